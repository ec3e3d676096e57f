"""Named constants of the Qwen3-VL recipe and the vision settings object.

Every derived number is computed here from the patch geometry, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError
from .media import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_URL_TIMEOUT_S, MediaLimits

PATCH_SIZE = 16
SPATIAL_MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
#: Side of the pixel square that becomes one LLM token (patch x spatial merge).
IMAGE_FACTOR = PATCH_SIZE * SPATIAL_MERGE_SIZE
PIXELS_PER_TOKEN = IMAGE_FACTOR * IMAGE_FACTOR

MIN_PIXELS = 4 * PIXELS_PER_TOKEN
MAX_PIXELS = 1800 * PIXELS_PER_TOKEN
FRAME_MAX_PIXELS = 768 * PIXELS_PER_TOKEN
VIDEO_TOTAL_PIXELS = 10 * FRAME_MAX_PIXELS
VIDEO_FPS = 1.0
VIDEO_MAX_FRAMES = 64

EMBEDDING_MAX_LENGTH = 8192
RERANKER_MAX_LENGTH = 10240
#: Tokens after the user content: ``<|im_end|>``, ``\n``, ``<|im_start|>``, ``assistant``, ``\n``.
PROMPT_TAIL_TOKENS = 5

DEFAULT_EMBEDDING_INSTRUCTION = "Represent the user's input."
DEFAULT_QUERY_INSTRUCTION = "Retrieve images or text relevant to the user's query."
DEFAULT_RERANK_INSTRUCTION = (
    "Given a search query, retrieve relevant candidates that answer the query."
)
RERANK_SYSTEM_PROMPT = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
EMPTY_INPUT_TEXT = "NULL"

DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_BATCH_TOKENS = 16384


@dataclass(frozen=True)
class VisionSettings:
    """How images and videos are sized and sampled (defaults: the training recipe).

    Attributes:
        min_pixels: Smallest image area after resizing, in pixels.
        max_pixels: Largest image area after resizing, in pixels (the pixel budget).
        fps: Frames per second sampled from video files.
        max_frames: Most frames sampled from one video (files and frame lists).
        total_pixels: Pixel budget for all frames of one video together.
        max_image_pixels: Largest decoded image accepted (decompression-bomb cap).
        url_timeout_s: Time-out for fetching http(s) media, in seconds.
    """

    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    fps: float = VIDEO_FPS
    max_frames: int = VIDEO_MAX_FRAMES
    total_pixels: int = VIDEO_TOTAL_PIXELS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    url_timeout_s: float = DEFAULT_URL_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.min_pixels < PIXELS_PER_TOKEN:
            raise ConfigurationError(f"min_pixels must be >= {PIXELS_PER_TOKEN}")
        if self.max_pixels < self.min_pixels:
            raise ConfigurationError("max_pixels must be >= min_pixels")
        if self.fps <= 0:
            raise ConfigurationError("fps must be > 0")
        if self.max_frames < TEMPORAL_PATCH_SIZE:
            raise ConfigurationError(f"max_frames must be >= {TEMPORAL_PATCH_SIZE}")
        if self.total_pixels < self.min_pixels:
            raise ConfigurationError("total_pixels must be >= min_pixels")
        if self.max_image_pixels <= 0 or self.url_timeout_s <= 0:
            raise ConfigurationError("max_image_pixels and url_timeout_s must be > 0")

    @property
    def limits(self) -> MediaLimits:
        """The media reading limits implied by these settings."""
        return MediaLimits(max_image_pixels=self.max_image_pixels, url_timeout_s=self.url_timeout_s)
