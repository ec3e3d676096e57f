"""Media named inside documents: content blocks, inline images, and who may read what.

The framework adapters turn a document (a LangChain ``Document``, a LlamaIndex
node) into one :class:`~qvl_integrations.core.inputs.MultimodalInput`. Three
pieces of that are the same for every framework and live here:

* :func:`blocks_to_input` reads a list of content blocks: LangChain v1
  standard blocks (``{"type": "image", "url" | "base64" | "path", ...}``,
  ``"video"``, ``"text"``), the older ``source_type`` form, and OpenAI-style
  ``{"type": "image_url", "image_url": {"url": ...}}``.
* :func:`is_inline_image` tells whether a document's text is really an image
  as a ``data:`` URI or raw base64 (what Chroma's ``add_images`` stores).
* :class:`MediaAccess` decides whether a local file or URL named inside a
  document may be read. Documents come from stores, loaders and users, so a
  path in their metadata is not trusted by default: local files are read only
  under roots the user allowed.

Example:
    >>> item = blocks_to_input([{"type": "text", "text": "a cat"}])
    >>> item.texts
    ('a cat',)
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, MediaAccessError, UnsupportedInputError
from .inputs import ImageInput, MultimodalInput, VideoInput

__all__ = ["MediaAccess", "blocks_to_input", "is_inline_image"]

_STRICT_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_SPACE_RE = re.compile(r"\s")
#: Shortest raw base64 string taken for an image (a 1x1 PNG is about 90 characters).
_MIN_INLINE_CHARS = 32
#: File signatures of the image formats Pillow reads that we accept inline.
_IMAGE_SIGNATURES: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)


def is_inline_image(text: str) -> bool:
    """Whether ``text`` is an image given inline rather than prose.

    True for a ``data:image/...;base64,`` URI whose header has no whitespace
    (its payload may be wrapped over lines, as ``base64`` tools do, and a
    malformed one fails loudly later): prose that merely starts with
    ``data:image/`` stays text. Also true for a raw base64 string (one line, no
    spaces) whose decoded start is an image file signature (PNG, JPEG, GIF,
    BMP, TIFF, WebP). Anything else is text: a long hex id stays text.

    Example:
        >>> is_inline_image("data:image/png;base64,iVBORw0KGgo=")
        True
        >>> is_inline_image("data:image/svg+xml is the MIME type of SVG files")
        False
        >>> is_inline_image("a photo of a cat")
        False
    """
    if text[:11].lower() == "data:image/":
        comma = text.find(",")
        header = text[: comma + 1].lower()
        # The header decides: a well-formed one means an image, even if its payload
        # then fails to decode (loudly); line breaks in the payload are fine.
        return comma > 0 and header.endswith(";base64,") and not _SPACE_RE.search(header)
    if len(text) < _MIN_INLINE_CHARS or len(text) % 4 or not _STRICT_BASE64_RE.fullmatch(text):
        return False
    try:
        start = base64.b64decode(text[:16], validate=True)
    except (binascii.Error, ValueError):
        return False
    if start[:4] == b"RIFF" and start[8:12] == b"WEBP":
        return True
    if start[:2] == b"BM" and start[6:10] == b"\0\0\0\0":  # BMP: its reserved bytes are zero
        return True
    return start.startswith(_IMAGE_SIGNATURES)


@dataclass(frozen=True)
class MediaAccess:
    """Which local files and URLs named inside documents may be read.

    Attributes:
        allowed_paths: Directories (or single files) under which local media
            may be read. Empty (the default): no local file named in a
            document is read. Paths are compared after resolving symlinks
            and ``..``.
        allow_urls: Whether http(s) URLs named in documents are fetched.

    Example:
        >>> policy = MediaAccess.create(["/data/images"])
        >>> policy.allows_path(Path("/data/images/cat.png"))
        True
        >>> policy.allows_path(Path("/etc/passwd"))
        False
    """

    allowed_paths: tuple[Path, ...] = ()
    allow_urls: bool = True

    @classmethod
    def create(
        cls, allowed_paths: Iterable[str | os.PathLike[str]] | None = None, allow_urls: bool = True
    ) -> MediaAccess:
        """A policy from user settings; the roots are resolved once, here."""
        roots = tuple(Path(os.path.expanduser(p)).resolve() for p in (allowed_paths or ()))
        return cls(allowed_paths=roots, allow_urls=allow_urls)

    def allows_path(self, path: Path) -> bool:
        """Whether the local file ``path`` lies under an allowed root."""
        resolved = path.expanduser().resolve()
        return any(resolved == root or resolved.is_relative_to(root) for root in self.allowed_paths)

    def check(self, item: MultimodalInput) -> MultimodalInput:
        """Return ``item`` if every file and URL it names may be read.

        Raises:
            MediaAccessError: a local path outside the allowed roots, or a URL
                while URLs are not allowed. The message says how to allow it.
        """
        media: list[tuple[str, ImageInput | VideoInput]] = [
            ("image", image) for image in _all_images(item)
        ]
        media += [("video", video) for video in item.videos]
        for what, medium in media:
            if medium.kind == "path":
                assert isinstance(medium.source, Path)
                self._check_path(medium.source, what)
            elif medium.kind == "url" and not self.allow_urls:
                raise MediaAccessError(
                    f"{what} URL {medium.source!r} named in a document is not fetched: "
                    "URLs are disallowed (allow_urls=False)"
                )
        return item

    def _check_path(self, path: Path, what: str) -> None:
        if self.allows_path(path):
            return
        if not self.allowed_paths:
            hint = "no local paths are allowed; pass allowed_paths=[<directory>] to read them"
        else:
            roots = ", ".join(str(root) for root in self.allowed_paths)
            hint = f"it is outside the allowed paths ({roots})"
        raise MediaAccessError(f"local {what} file {str(path)!r} named in a document: {hint}")


def _all_images(item: MultimodalInput) -> Iterable[ImageInput]:
    yield from item.images
    for video in item.videos:
        if video.kind == "frames":
            assert isinstance(video.source, tuple)
            yield from video.source


def _block_source(block: Mapping[str, Any], kind: str) -> Any:
    """The value naming one image or video block's media (a URL, path, data URI...)."""
    nested = block.get(f"{kind}_url")
    if block.get("type") == f"{kind}_url":  # OpenAI style: {"image_url": {"url": ...}} or a str
        url = nested.get("url") if isinstance(nested, Mapping) else nested
        if not isinstance(url, str) or not url:
            raise UnsupportedInputError(f"{kind}_url block without a url")
        return url
    source_type = block.get("source_type")  # the pre-v1 form: source_type + url / data
    if source_type == "base64" or (source_type is None and block.get("base64") is not None):
        data = block.get("base64") if block.get("base64") is not None else block.get("data")
        if not isinstance(data, str) or not data:
            raise UnsupportedInputError(f"{kind} block with an empty base64 payload")
        mime = block.get("mime_type")
        if kind == "video":
            raise UnsupportedInputError(
                "video blocks with inline base64 data are not supported; give a url or path"
            )
        # Always a data URI: the payload is known to be base64, whatever its length.
        return f"data:{mime or 'application/octet-stream'};base64,{data}"
    if source_type == "id" or block.get("file_id") is not None:
        raise UnsupportedInputError(
            f"{kind} block refers to a provider file id, which cannot be read locally"
        )
    for key in ("url", "path", "data"):
        value = block.get(key)
        if value is not None:
            if isinstance(value, (str, os.PathLike)) and str(value):
                return Path(value) if key == "path" else value
            raise UnsupportedInputError(f"{kind} block has an empty or non-string {key!r}")
    raise UnsupportedInputError(f"{kind} block has none of 'url', 'base64' or 'path'")


def blocks_to_input(blocks: Sequence[Any]) -> MultimodalInput:
    """One input from a list of content blocks (text, image, video), in order per modality.

    A plain string in the list is a text block. Blocks of other types
    (audio, files, tool calls...) are refused rather than skipped.

    Raises:
        UnsupportedInputError: a block this package cannot read (its position
            is in the message).
        MediaDecodeError: a malformed inline image.
    """
    texts: list[str] = []
    images: list[ImageInput] = []
    videos: list[VideoInput] = []
    for position, block in enumerate(blocks):
        try:
            if isinstance(block, str):
                texts.append(block)
                continue
            if not isinstance(block, Mapping):
                raise UnsupportedInputError(
                    f"a content block must be a dict or str, got {type(block).__name__}"
                )
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise UnsupportedInputError("text block without a string 'text'")
                texts.append(text)
            elif kind in ("image", "image_url"):
                images.append(ImageInput.of(_block_source(block, "image")))
            elif kind in ("video", "video_url"):
                videos.append(VideoInput.of(_block_source(block, "video")))
            else:
                raise UnsupportedInputError(
                    f"content blocks of type {kind!r} are not supported "
                    "(text, image, image_url, video, video_url are)"
                )
        except InputError as exc:
            raise type(exc)(f"content block {position}: {exc.reason}") from exc
    return MultimodalInput(texts=tuple(texts), images=tuple(images), videos=tuple(videos))
