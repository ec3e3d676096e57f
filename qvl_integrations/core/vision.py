"""Resizing images and sampling videos exactly as the checkpoints were trained.

The resizing itself is qwen-vl-utils' (``fetch_image``/``fetch_video`` with a
patch size of 16): that is what the checkpoints were evaluated with, quirks
included (frames of a frame-list video are first snapped to multiples of 64
and small frames are upscaled). This module adds our own reading (with typed
errors), frame sub-sampling before any frame is decoded, and a cheap token
count for batching that reads image headers only.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError, MediaDecodeError
from . import _deps
from .inputs import ImageInput, MultimodalInput, VideoInput
from .media import image_size, load_image, local_video_path
from .settings import (
    IMAGE_FACTOR,
    PATCH_SIZE,
    PIXELS_PER_TOKEN,
    TEMPORAL_PATCH_SIZE,
    VisionSettings,
)

__all__ = [
    "PreparedMedia",
    "PreparedVideo",
    "estimate_visual_tokens",
    "prepare_media",
    "sample_frames",
]

# Text tokens around each temporal patch of a video: "<12.5 seconds>" plus start/end markers.
_VIDEO_STEP_TEXT_TOKENS = 8
# qwen-vl-utils resizes frame-list frames with twice our factor (its quirk, kept for parity).
_FRAME_LIST_FACTOR = 2 * IMAGE_FACTOR


@dataclass
class PreparedVideo:
    """A decoded, resized video: ``frames`` is a float tensor (T, C, H, W)."""

    frames: Any
    metadata: dict[str, Any]


@dataclass
class PreparedMedia:
    """The resized media of one input, in the order the model sees them."""

    images: list[Image.Image]
    videos: list[PreparedVideo]


def sample_frames(frames: tuple[ImageInput, ...], max_frames: int) -> list[ImageInput]:
    """Keep at most ``max_frames`` frames, evenly spread (``linspace``, integer indices)."""
    if len(frames) <= max_frames:
        return list(frames)
    indices = np.linspace(0, len(frames) - 1, max_frames, dtype=int).tolist()
    return [frames[i] for i in indices]


def _resize_image(img: Image.Image, settings: VisionSettings) -> Image.Image:
    vp = _deps.vision_process()
    resized: Image.Image = vp.fetch_image(
        {"image": img, "min_pixels": settings.min_pixels, "max_pixels": settings.max_pixels},
        image_patch_size=PATCH_SIZE,
    )
    return resized


def _fetch_video(element: dict[str, Any]) -> PreparedVideo:
    vp = _deps.vision_process()
    try:
        (frames, metadata), _fps = vp.fetch_video(
            element,
            image_patch_size=PATCH_SIZE,
            return_video_sample_fps=True,
            return_video_metadata=True,
        )
    except InputError:
        raise
    except Exception as exc:
        raise MediaDecodeError(f"video could not be decoded: {type(exc).__name__}: {exc}") from exc
    if frames.shape[0] == 0:
        raise MediaDecodeError("video has no frames")
    return PreparedVideo(frames=frames, metadata=metadata)


def _prepare_video(
    video: VideoInput, item: MultimodalInput, settings: VisionSettings
) -> PreparedVideo:
    if video.kind == "frames":
        assert isinstance(video.source, tuple)
        limits = settings.limits
        frames = [load_image(f, limits) for f in sample_frames(video.source, settings.max_frames)]
        return _fetch_video({"video": frames, "total_pixels": settings.total_pixels})
    element: dict[str, Any] = {
        "fps": item.fps or settings.fps,
        "max_frames": item.max_frames or settings.max_frames,
        "total_pixels": settings.total_pixels,
    }
    with tempfile.TemporaryDirectory(prefix="qvl-video-") as workdir:
        element["video"] = local_video_path(video, settings.limits, workdir)
        return _fetch_video(element)


def prepare_media(item: MultimodalInput, settings: VisionSettings) -> PreparedMedia:
    """Read, decode and resize every image and video of one input.

    Raises:
        InputError: a subclass naming what is wrong (the caller adds the index).
    """
    limits = settings.limits
    images = [_resize_image(load_image(image, limits), settings) for image in item.images]
    videos = [_prepare_video(video, item, settings) for video in item.videos]
    return PreparedMedia(images=images, videos=videos)


def _smart_resize(height: int, width: int, **options: Any) -> tuple[int, int]:
    """The recipe's target size; an unusable shape (aspect ratio over 200) is an input error."""
    try:
        h, w = _deps.vision_process().smart_resize(height, width, **options)
    except ValueError as exc:
        raise MediaDecodeError(f"image of {width}x{height} cannot be resized: {exc}") from exc
    return int(h), int(w)


def _image_tokens(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> int:
    h, w = _smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return h * w // PIXELS_PER_TOKEN


def _frame_list_tokens(video: VideoInput, settings: VisionSettings) -> int:
    assert isinstance(video.source, tuple)
    vp = _deps.vision_process()
    frames = sample_frames(video.source, settings.max_frames)
    nframes = math.ceil(len(frames) / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE
    first = frames[0]
    if first.kind == "url":
        # Unknown size without a download: count the largest frame the budget allows.
        return _file_video_tokens(settings)
    width, height = image_size(first, settings.limits)
    h1, w1 = _smart_resize(height, width, factor=_FRAME_LIST_FACTOR)
    min_pixels = vp.VIDEO_MIN_TOKEN_NUM * PIXELS_PER_TOKEN
    max_pixels = max(
        min(
            vp.VIDEO_MAX_TOKEN_NUM * PIXELS_PER_TOKEN,
            settings.total_pixels / nframes * TEMPORAL_PATCH_SIZE,
        ),
        int(min_pixels * 1.05),
    )
    per_step = _image_tokens(h1, w1, IMAGE_FACTOR, min_pixels, int(max_pixels))
    steps = nframes // TEMPORAL_PATCH_SIZE
    return steps * (per_step + _VIDEO_STEP_TEXT_TOKENS)


def _file_video_tokens(settings: VisionSettings) -> int:
    # Without decoding we only know the budget: an upper bound.
    steps = settings.max_frames // TEMPORAL_PATCH_SIZE
    return settings.total_pixels // PIXELS_PER_TOKEN + steps * _VIDEO_STEP_TEXT_TOKENS


def estimate_visual_tokens(item: MultimodalInput, settings: VisionSettings) -> int:
    """Visual tokens an input will take, from headers only (exact for local images).

    URL images and video files are counted at their budget (an upper bound),
    so batches never exceed the token budget.

    Raises:
        InputError: a local image that is missing, unreadable or too large.
    """
    total = 0
    for image in item.images:
        if image.kind == "url":
            total += settings.max_pixels // PIXELS_PER_TOKEN
            continue
        width, height = image_size(image, settings.limits)
        total += _image_tokens(
            height, width, IMAGE_FACTOR, settings.min_pixels, settings.max_pixels
        )
    for video in item.videos:
        if video.kind == "frames":
            total += _frame_list_tokens(video, settings)
        else:
            total += _file_video_tokens(settings)
    return total
