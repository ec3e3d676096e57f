"""Reading images and videos into memory, with clear errors.

This module only reads and decodes. Resizing and frame sampling follow the
checkpoints' training recipe and live in :mod:`.vision`.
"""

from __future__ import annotations

import io
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import (
    ImageTooLargeError,
    MediaDecodeError,
    MediaFetchError,
    MediaNotFoundError,
)
from .inputs import ImageInput, VideoInput, decode_inline_image

__all__ = ["MediaLimits", "fetch_url", "image_size", "load_image", "local_video_path"]

# PIL's own hard limit (twice Image.MAX_IMAGE_PIXELS); our default cap.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
DEFAULT_URL_TIMEOUT_S = 20.0
DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
# Modes whose samples exceed 8 bits; PIL's plain convert("RGB") clips them.
_HIGH_BIT_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class MediaLimits:
    """Safety limits for reading media.

    Attributes:
        max_image_pixels: Largest ``width * height`` accepted before decoding.
        url_timeout_s: Time-out for each http(s) request, in seconds.
        max_download_bytes: Largest http(s) body accepted.
    """

    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    url_timeout_s: float = DEFAULT_URL_TIMEOUT_S
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES


def fetch_url(url: str, limits: MediaLimits) -> bytes:
    """Download ``url`` with a time-out and a size cap.

    Raises:
        MediaFetchError: unreachable host, error status, time-out, or too large.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "qvl-integrations"})
    try:
        with urllib.request.urlopen(request, timeout=limits.url_timeout_s) as response:
            data: bytes = response.read(limits.max_download_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise MediaFetchError(f"fetching {url!r} failed with HTTP status {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MediaFetchError(f"could not fetch {url!r}: {reason}") from exc
    if len(data) > limits.max_download_bytes:
        raise MediaFetchError(f"{url!r} is larger than {limits.max_download_bytes} bytes")
    if not data:
        raise MediaDecodeError(f"{url!r} returned an empty body")
    return data


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise MediaNotFoundError(f"{what} file not found: {str(path)!r}")
    if not path.is_file():
        raise MediaNotFoundError(f"{what} path is not a file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise MediaDecodeError(f"{what} file is empty (0 bytes): {str(path)!r}")


def _open_lazily(image: ImageInput, limits: MediaLimits) -> Image.Image:
    """Open an image without decoding its pixels (header only)."""
    if image.kind == "pil":
        assert isinstance(image.source, Image.Image)
        return image.source
    if image.kind == "path":
        assert isinstance(image.source, Path)
        _check_file(image.source, "image")
        stream: io.BytesIO | Path = image.source
    elif image.kind == "url":
        assert isinstance(image.source, str)
        stream = io.BytesIO(fetch_url(image.source, limits))
    elif image.kind == "base64":
        assert isinstance(image.source, str)
        stream = io.BytesIO(decode_inline_image(image.source))
    else:
        assert isinstance(image.source, bytes)
        if not image.source:
            raise MediaDecodeError("image bytes are empty")
        stream = io.BytesIO(image.source)
    try:
        with warnings.catch_warnings():
            # We enforce our own cap just below; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{image.describe()}: {exc}") from exc
    except (Image.UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaDecodeError(f"{image.describe()} is not a readable image: {exc}") from exc


def _check_pixels(img: Image.Image, image: ImageInput, limits: MediaLimits) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise MediaDecodeError(f"{image.describe()} has an empty size {width}x{height}")
    if width * height > limits.max_image_pixels:
        raise ImageTooLargeError(
            f"{image.describe()} has {width}x{height} = {width * height} pixels, more than the "
            f"cap of {limits.max_image_pixels} (max_image_pixels)"
        )


def image_size(image: ImageInput, limits: MediaLimits) -> tuple[int, int]:
    """Width and height of an image, reading only its header where possible."""
    img = _open_lazily(image, limits)
    _check_pixels(img, image, limits)
    return img.size


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit or float image to 8-bit grey (PIL would clip instead)."""
    import numpy as np

    array = np.asarray(img, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    array = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    return Image.fromarray(np.round(array).astype(np.uint8))


def load_image(image: ImageInput, limits: MediaLimits) -> Image.Image:
    """Read and fully decode one image.

    The result keeps its mode (RGB conversion happens with the training
    recipe's rules later), except that images with more than 8 bits per
    sample are scaled to 8-bit grey.

    Raises:
        MediaNotFoundError: a path that does not exist.
        MediaDecodeError: empty, corrupt or truncated data.
        ImageTooLargeError: more pixels than ``limits.max_image_pixels``.
        MediaFetchError: a URL that could not be fetched.
    """
    img = _open_lazily(image, limits)
    _check_pixels(img, image, limits)
    try:
        img.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaDecodeError(f"{image.describe()} is corrupt or truncated: {exc}") from exc
    if img.mode in _HIGH_BIT_DEPTH_MODES:
        img = _to_8bit(img)
    return img


def local_video_path(video: VideoInput, limits: MediaLimits, workdir: str) -> str:
    """A local file path for a file or URL video; URLs are downloaded into ``workdir``.

    Raises:
        MediaNotFoundError: the file does not exist.
        MediaDecodeError: the file is empty.
        MediaFetchError: the URL could not be fetched.
    """
    if video.kind == "path":
        assert isinstance(video.source, Path)
        _check_file(video.source, "video")
        return os.fspath(video.source)
    assert video.kind == "url" and isinstance(video.source, str)
    data = fetch_url(video.source, limits)
    suffix = Path(video.source.split("?")[0]).suffix or ".mp4"
    handle, path = tempfile.mkstemp(suffix=suffix, dir=workdir)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    return path
