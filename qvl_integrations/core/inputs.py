"""Typed inputs: everything a user may pass becomes one frozen :class:`MultimodalInput`.

Accepted forms for one input (see :func:`to_input`):

* ``str``: text. A bare string is always text, never a file name.
* ``pathlib.Path``: a local image, or a video when its suffix is a video suffix.
* ``bytes``, ``bytearray``, ``memoryview``, ``io.BytesIO`` (or any binary
  file object): encoded image bytes.
* ``PIL.Image.Image`` in any mode.
* :class:`ImageInput` / :class:`VideoInput`: one image / one video.
* ``list``/``tuple`` of frames (paths or PIL images): one video.
* the authors' dict format ``{"text", "image", "video", "instruction", "fps",
  "max_frames"}``, each value single or a list.
* :class:`MultimodalInput` itself.

Inside ``image``/``video`` values and :class:`ImageInput`, a string names an
image: a local path, ``file://`` URI, ``http(s)://`` URL, ``data:`` URI or a
raw base64 string. Nothing downstream inspects types or file names again.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from PIL import Image

from ..errors import ConfigurationError, InputError, MediaDecodeError, UnsupportedInputError

__all__ = [
    "ImageInput",
    "MultimodalInput",
    "VideoInput",
    "to_input",
    "to_inputs",
]

#: Still-image suffixes that are never a video (animated GIF/WebP/AVIF may be).
STILL_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".heic"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpeg", ".mpg", ".flv", ".wmv", ".3gp"}
)
_BASE64_RE = re.compile(r"[A-Za-z0-9+/=_\-\s]+")
# Shorter strings are far more likely to be (missing) file names than images.
_MIN_BASE64_CHARS = 64
_DICT_KEYS = frozenset({"text", "image", "video", "instruction", "fps", "max_frames"})

ImageKind = Literal["path", "url", "bytes", "base64", "pil"]
VideoKind = Literal["path", "url", "frames"]


_STRICT_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _normalise_base64(payload: str) -> str:
    """Standard alphabet, no whitespace, padded: what ``b64decode(validate=True)`` takes."""
    cleaned = "".join(payload.split()).replace("-", "+").replace("_", "/")
    return cleaned + "=" * (-len(cleaned) % 4)


def _payload_start(text: str, expected: str = "image") -> int:
    """Where the base64 payload of an inline image starts (after a data URI's header)."""
    if text[:5].lower() != "data:":
        return 0
    comma = text.find(",")
    if comma < 0:
        raise MediaDecodeError("malformed data URI: no ',' between header and payload")
    header = text[5:comma]
    media_type = header.split(";")[0].strip().lower()
    if media_type and not (
        media_type.startswith(expected + "/") or media_type == "application/octet-stream"
    ):
        raise UnsupportedInputError(
            f"data URI of type {media_type!r} where an {expected} was expected"
        )
    if ";base64" not in header.lower():
        raise MediaDecodeError("data URI is not base64-encoded (';base64' missing)")
    return comma + 1


def _check_base64(text: str, what: str) -> None:
    """Validate an inline base64 image without copying or decoding it (done when loaded)."""
    start = _payload_start(text)
    size = len(text) - start
    if size == 0:
        raise MediaDecodeError(f"{what} has an empty payload")
    if size % 4 == 0 and _STRICT_BASE64_RE.fullmatch(text, start):
        return
    cleaned = _normalise_base64(text[start:]) if _BASE64_RE.fullmatch(text, start) else ""
    if not cleaned or len(cleaned.rstrip("=")) % 4 == 1 or not _STRICT_BASE64_RE.fullmatch(cleaned):
        raise MediaDecodeError(f"malformed base64 in {what}")


def decode_inline_image(text: str) -> bytes:
    """The bytes of an inline image: a base64 string or a ``data:`` URI.

    Raises:
        MediaDecodeError: malformed base64, or an empty payload.
    """
    payload = _normalise_base64(text[_payload_start(text) :])
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaDecodeError(f"malformed base64 in inline image: {exc}") from exc
    if not raw:
        raise MediaDecodeError("inline image decodes to 0 bytes")
    return raw


def _file_uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(url2pathname(unquote(parsed.path)))


@dataclass(frozen=True)
class ImageInput:
    """One image, already classified.

    Build it with :meth:`of` from anything users pass; the fields are then
    fixed: ``kind`` says how ``source`` is to be read.

    Attributes:
        kind: ``"path"`` (local file), ``"url"`` (http/https), ``"bytes"``
            (encoded file content), ``"base64"`` (a base64 string or ``data:``
            URI, validated here, decoded only when read, so a corpus of them
            is not held twice) or ``"pil"`` (an image object).
        source: A ``Path``, URL string, ``bytes``, base64 ``str`` or ``PIL.Image.Image``.

    Example:
        >>> ImageInput.of("https://example.com/cat.png").kind
        'url'
    """

    kind: ImageKind
    source: Path | str | bytes | Image.Image = field(repr=False)

    @classmethod
    def of(cls, value: Any) -> ImageInput:
        """Classify one image value (path, URI, URL, bytes, base64, PIL image).

        Raises:
            UnsupportedInputError: the value is not an image form we accept.
            MediaDecodeError: a base64 string or data URI is malformed.
        """
        if isinstance(value, ImageInput):
            return value
        if isinstance(value, Image.Image):
            return cls("pil", value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls("bytes", bytes(value))
        if isinstance(value, io.BytesIO):
            return cls("bytes", value.getvalue())
        if isinstance(value, os.PathLike):
            return cls("path", Path(value))
        if hasattr(value, "read") and not isinstance(value, (str, io.TextIOBase)):
            data = value.read()
            if not isinstance(data, bytes):
                raise UnsupportedInputError(
                    "file object for an image must be opened in binary mode"
                )
            return cls("bytes", data)
        if isinstance(value, str):
            return cls._of_string(value)
        raise UnsupportedInputError(f"unsupported image value of type {type(value).__name__}")

    @classmethod
    def _of_string(cls, value: str) -> ImageInput:
        text = value.strip()
        if not text:
            raise UnsupportedInputError("empty string where an image was expected")
        lowered = text[:8].lower()
        if lowered.startswith(("http://", "https://")):
            return cls("url", text)
        if lowered.startswith("file://"):
            return cls("path", _file_uri_to_path(text))
        if lowered.startswith("data:"):
            _check_base64(text, "data URI")
            return cls("base64", text)
        if (
            len(text) >= _MIN_BASE64_CHARS
            and _BASE64_RE.fullmatch(text)
            and not os.path.exists(text)
        ):
            _check_base64(text, "base64 image string")
            return cls("base64", text)
        return cls("path", Path(text))

    def describe(self) -> str:
        """A short human description for error messages."""
        if self.kind in ("path", "url"):
            return f"{self.kind} {str(self.source)!r}"
        if self.kind == "bytes":
            assert isinstance(self.source, bytes)
            return f"{len(self.source)} bytes"
        if self.kind == "base64":
            assert isinstance(self.source, str)
            head = "data URI" if self.source[:5].lower() == "data:" else "base64 string"
            return f"{head} of {len(self.source)} characters"
        return "PIL image"


@dataclass(frozen=True)
class VideoInput:
    """One video: a file, a URL, or a list of frames.

    Attributes:
        kind: ``"path"``, ``"url"`` or ``"frames"``.
        source: ``Path``, URL string, or a tuple of :class:`ImageInput` frames.

    Example:
        >>> VideoInput.of(["f0.png", "f1.png"]).kind
        'frames'
    """

    kind: VideoKind
    source: Path | str | tuple[ImageInput, ...] = field(repr=False)

    @classmethod
    def of(cls, value: Any) -> VideoInput:
        """Classify one video value: a path/URL, or a sequence of frames.

        Raises:
            UnsupportedInputError: the value is not a video form we accept.
        """
        if isinstance(value, VideoInput):
            return value
        if isinstance(value, os.PathLike):
            return cls("path", _video_path(Path(value)))
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise UnsupportedInputError("empty string where a video was expected")
            lowered = text[:8].lower()
            if lowered.startswith(("http://", "https://")):
                return cls("url", text)
            if lowered.startswith("file://"):
                return cls("path", _video_path(_file_uri_to_path(text)))
            if lowered.startswith("data:"):
                raise UnsupportedInputError("videos as data URIs are not supported; save to a file")
            return cls("path", _video_path(Path(text)))
        if isinstance(value, (list, tuple)):
            if not value:
                raise UnsupportedInputError("a video given as frames needs at least one frame")
            return cls("frames", tuple(ImageInput.of(frame) for frame in value))
        raise UnsupportedInputError(f"unsupported video value of type {type(value).__name__}")


def _video_path(path: Path) -> Path:
    """A video file path; an image file here is a mistake worth naming."""
    if path.suffix.lower() in STILL_IMAGE_SUFFIXES:
        raise UnsupportedInputError(
            f"{str(path)!r} is an image file where a video was expected; a video given as "
            "frames is one list of images, e.g. {'video': ['f0.png', 'f1.png']}"
        )
    return path


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


#: Suffixes of files that, in a list, make it a video given as frames.
FRAME_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tiff", ".tif"})


def is_frame_value(value: Any) -> bool:
    """Whether ``value`` reads as one video frame: an image object, or an image file's name."""
    if isinstance(value, (Image.Image, ImageInput)):
        return True
    if isinstance(value, (str, os.PathLike)):
        return Path(str(value).split("?")[0]).suffix.lower() in FRAME_SUFFIXES
    return False


def _videos_of(value: Any) -> tuple[VideoInput, ...]:
    """Read the authors' ``video`` field: one video, one frame list, or several videos."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike, VideoInput)):
        return (VideoInput.of(value),)
    if isinstance(value, (list, tuple)):
        if not value:
            return ()
        if is_frame_value(value[0]):
            return (VideoInput.of(value),)
        return tuple(VideoInput.of(v) for v in value)
    raise UnsupportedInputError(f"unsupported video value of type {type(value).__name__}")


@dataclass(frozen=True)
class MultimodalInput:
    """One input to embed or rerank: any mix of texts, images and videos.

    The model sees, in this order: all videos, all images, all texts. An input
    with none of them is encoded as the text ``NULL``.

    Args:
        texts: One string or several.
        images: One image value or several (see :class:`ImageInput`).
        videos: One video value or several (see :class:`VideoInput`).
        instruction: Task instruction for this input (embedding only);
            ``None`` uses the call's or the model's default.
        fps: Sampling rate for video files in this input.
        max_frames: Frame cap for video files in this input.

    Example:
        >>> item = MultimodalInput(texts="a red square", images=["square.png"])
        >>> item.texts, item.images[0].kind
        (('a red square',), 'path')
    """

    texts: tuple[str, ...] = ()
    images: tuple[ImageInput, ...] = ()
    videos: tuple[VideoInput, ...] = ()
    instruction: str | None = None
    fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        texts = _as_tuple(self.texts)
        for text in texts:
            if not isinstance(text, str):
                raise UnsupportedInputError(f"text must be str, got {type(text).__name__}")
        images = tuple(ImageInput.of(v) for v in _as_tuple(self.images))
        videos = (
            tuple(VideoInput.of(v) for v in self.videos)
            if isinstance(self.videos, tuple)
            and all(isinstance(v, VideoInput) for v in self.videos)
            else _videos_of(self.videos)
        )
        if self.instruction is not None and not isinstance(self.instruction, str):
            raise UnsupportedInputError("instruction must be a string")
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise UnsupportedInputError(f"fps must be a positive number, got {self.fps!r}")
        if self.max_frames is not None and not (
            isinstance(self.max_frames, int) and self.max_frames >= 2
        ):
            raise UnsupportedInputError(f"max_frames must be an int >= 2, got {self.max_frames!r}")
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "videos", videos)

    @property
    def is_empty(self) -> bool:
        """True when the input holds no text, image or video (encoded as ``NULL``)."""
        return not (self.texts or self.images or self.videos)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultimodalInput:
        """Read the authors' dict format ``{"text", "image", "video", "instruction", ...}``.

        Raises:
            UnsupportedInputError: an unknown key or a value of the wrong type.
        """
        unknown = set(data) - _DICT_KEYS
        if unknown:
            raise UnsupportedInputError(
                f"unknown key(s) {sorted(unknown)}; expected some of {sorted(_DICT_KEYS)}"
            )
        return cls(
            texts=_as_tuple(data.get("text")),
            images=_as_tuple(data.get("image")),
            videos=_videos_of(data.get("video")),
            instruction=data.get("instruction"),
            fps=data.get("fps"),
            max_frames=data.get("max_frames"),
        )


def to_input(value: Any) -> MultimodalInput:
    """Turn one user value into a :class:`MultimodalInput` (see the module docstring).

    Example:
        >>> to_input({"text": "a caption", "image": "photo.jpg"}).images[0].kind
        'path'

    Raises:
        UnsupportedInputError: the value's type or form is not accepted.
        MediaDecodeError: an inline base64 image or data URI is malformed.
    """
    if isinstance(value, MultimodalInput):
        return value
    if isinstance(value, str):
        return MultimodalInput(texts=(value,))
    if isinstance(value, Mapping):
        return MultimodalInput.from_dict(value)
    if isinstance(value, VideoInput):
        return MultimodalInput(videos=(value,))
    if isinstance(value, os.PathLike) and Path(value).suffix.lower() in VIDEO_SUFFIXES:
        return MultimodalInput(videos=(VideoInput.of(value),))
    if isinstance(value, (list, tuple)):
        return MultimodalInput(videos=(VideoInput.of(value),))
    if value is None:
        raise UnsupportedInputError("None is not an input; use '' or {} for an empty input")
    return MultimodalInput(images=(ImageInput.of(value),))


def to_inputs(values: Iterable[Any] | Any, *, role: str | None = None) -> list[MultimodalInput]:
    """Turn a list of user values into inputs, naming the index of a bad one.

    Example:
        >>> [len(item.texts) for item in to_inputs(["one", {"text": ["two", "three"]}])]
        [1, 2]

    Raises:
        InputError: for the first bad value, with ``index`` set.
        ConfigurationError: ``values`` is a single string (a list was meant).
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise ConfigurationError(
                f"inputs must be a list, got {type(values).__name__}; wrap one input in a list"
            )
        values = list(values)
    result = []
    for index, value in enumerate(values):
        try:
            result.append(to_input(value))
        except InputError as exc:
            exc.at(index, role)
            raise
    return result
