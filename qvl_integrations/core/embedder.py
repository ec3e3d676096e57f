"""The embedder: Qwen3-VL-Embedding vectors for any mix of text, images and video."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigurationError
from .base import ModelRunner
from .encoding import last_token_states
from .inputs import MultimodalInput, to_inputs
from .prompts import embedding_conversation, format_instruction
from .quantize import Precision, quantize
from .settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBEDDING_INSTRUCTION,
    DEFAULT_QUERY_INSTRUCTION,
    EMBEDDING_MAX_LENGTH,
    VisionSettings,
)
from .vision import PreparedMedia

__all__ = ["QwenVLEmbedder"]


class QwenVLEmbedder(ModelRunner):
    """Embeds texts, images, videos and any mix of them into one vector space.

    The model loads on first use, and is shared with every other instance
    asking for the same checkpoint, device, dtype and attention.

    Args:
        model_name_or_path: Hub id or local directory. ``None`` reads the
            ``QVL_EMBEDDING_MODEL`` environment variable, else
            ``Qwen/Qwen3-VL-Embedding-2B``.
        device: ``"cuda"``, ``"mps"``, ``"cpu"``, a ``torch.device``, or
            ``None``/``"auto"`` (cuda, then mps, then cpu).
        dtype: ``"auto"`` (bfloat16 on a GPU, float32 on the CPU),
            ``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype``.
        attn_implementation: ``"auto"`` (flash-attention 2 when installed on
            CUDA, else ``"sdpa"``), ``"sdpa"``, ``"eager"`` or
            ``"flash_attention_2"``.
        max_length: Most tokens per input (8192). Longer inputs lose ordinary
            text tokens from the end; special and visual tokens are kept.
        min_pixels: Smallest image area after resizing, in pixels.
        max_pixels: Image pixel budget after resizing, in pixels.
        fps: Frames per second sampled from video files.
        max_frames: Most frames per video.
        total_pixels: Pixel budget for all frames of one video.
        max_image_pixels: Largest decoded image accepted (bomb guard).
        url_timeout_s: Time-out per http(s) fetch, in seconds.
        batch_size: Most inputs per forward pass.
        max_batch_tokens: Most (padded) tokens per forward pass; ``None``:
            16384 on a GPU, and on the CPU the call's largest input (so peak
            memory is that of one input at a time).
        show_progress: Progress bar; ``None`` shows one for 256+ inputs.
        instruction: Default instruction (documents and plain ``embed``).
        query_instruction: Default instruction of :meth:`embed_query`.

    Example:
        >>> emb = QwenVLEmbedder("Qwen/Qwen3-VL-Embedding-2B")  # doctest: +SKIP
        >>> vectors = emb.embed(["a cat", {"image": "cat.png"}])  # doctest: +SKIP
        >>> vectors.shape  # doctest: +SKIP
        (2, 2048)
    """

    _role = "embedding"
    _default_checkpoint = "Qwen/Qwen3-VL-Embedding-2B"
    _checkpoint_env = "QVL_EMBEDDING_MODEL"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "auto",
        max_length: int = EMBEDDING_MAX_LENGTH,
        min_pixels: int = VisionSettings.min_pixels,
        max_pixels: int = VisionSettings.max_pixels,
        fps: float = VisionSettings.fps,
        max_frames: int = VisionSettings.max_frames,
        total_pixels: int = VisionSettings.total_pixels,
        max_image_pixels: int = VisionSettings.max_image_pixels,
        url_timeout_s: float = VisionSettings.url_timeout_s,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_tokens: int | None = None,
        show_progress: bool | None = None,
        instruction: str = DEFAULT_EMBEDDING_INSTRUCTION,
        query_instruction: str = DEFAULT_QUERY_INSTRUCTION,
    ) -> None:
        super().__init__(
            model_name_or_path,
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            max_length=max_length,
            vision=VisionSettings(
                min_pixels=min_pixels,
                max_pixels=max_pixels,
                fps=fps,
                max_frames=max_frames,
                total_pixels=total_pixels,
                max_image_pixels=max_image_pixels,
                url_timeout_s=url_timeout_s,
            ),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            show_progress=show_progress,
        )
        for name, value in (("instruction", instruction), ("query_instruction", query_instruction)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{name} must be a non-empty string")
        self.instruction = instruction
        self.query_instruction = query_instruction

    @property
    def dimension(self) -> int:
        """Full embedding width (the trunk's hidden size); loads the model."""
        return self.loaded.hidden_size

    def embed(
        self,
        inputs: Sequence[Any],
        *,
        instruction: str | None = None,
        dim: int | None = None,
        normalize: bool = True,
        precision: Precision = "float32",
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed a list of inputs.

        Args:
            inputs: Inputs in any accepted form (text, image, video, dict,
                :class:`MultimodalInput`); see :func:`to_input`.
            instruction: Instruction for inputs that carry none; defaults to
                the instance's ``instruction``.
            dim: Matryoshka dimension: keep the first ``dim`` components
                (re-normalised when ``normalize``).
            normalize: L2-normalise the vectors.
            precision: ``"float32"``, ``"int8"`` (``round(127 * x)``; needs
                ``normalize``) or ``"binary"`` (sign bits packed into uint8).
            batch_size: Overrides the instance's batch size for this call.
            show_progress: Overrides the instance's progress setting.

        Returns:
            ``(n, d)`` array: float32, int8, or uint8 of width ``ceil(d/8)``
            for ``"binary"``; ``n == len(inputs)``, also for 0 and 1.

        Raises:
            InputError: a bad input, naming its index.
            ConfigurationError: a bad ``dim``, ``precision`` or ``batch_size``.

        Example:
            >>> emb.embed(["a cat", {"image": "cat.png"}], dim=256).shape  # doctest: +SKIP
            (2, 256)
        """
        items = to_inputs(inputs)
        default = format_instruction(instruction) if instruction else self.instruction
        width = self._check_dim(dim)
        if precision == "int8" and not normalize:
            raise ConfigurationError(
                "precision='int8' needs normalize=True (it scales unit vectors)"
            )
        out = np.zeros((len(items), width), dtype=np.float32)
        if items:
            costs = self._costs(items)
            batches = self._plan(costs, batch_size)
            self._run(
                batches,
                lambda batch: self._embed_batch(items, batch, default, width, normalize),
                out,
                "Embedding",
                show_progress,
            )
        return quantize(out, precision)

    def embed_query(self, inputs: Sequence[Any], **kwargs: Any) -> np.ndarray:
        """Embed queries: like :meth:`embed` with ``query_instruction`` as the default."""
        kwargs.setdefault("instruction", self.query_instruction)
        return self.embed(inputs, **kwargs)

    def embed_documents(self, inputs: Sequence[Any], **kwargs: Any) -> np.ndarray:
        """Embed documents: like :meth:`embed` with the instance's ``instruction``."""
        kwargs.setdefault("instruction", self.instruction)
        return self.embed(inputs, **kwargs)

    # -- internals -------------------------------------------------------------------------------
    def _check_dim(self, dim: int | None) -> int:
        if dim is None:
            return self.dimension
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= self.dimension:
            raise ConfigurationError(f"dim must be an int in [1, {self.dimension}], got {dim!r}")
        return dim

    def _embed_batch(
        self,
        items: Sequence[MultimodalInput],
        batch: Sequence[int],
        default_instruction: str,
        width: int,
        normalize: bool,
    ) -> np.ndarray:
        conversations = []
        for index in batch:
            item = items[index]
            media: PreparedMedia = self._media(item, index)
            instruction = format_instruction(item.instruction) if item.instruction else ""
            conversations.append(
                embedding_conversation(item, media, instruction or default_instruction)
            )
        encoded = self._encode(conversations, batch)
        pooled = last_token_states(self._forward(encoded), encoded.lengths)[:, :width].float()
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled.cpu().numpy()
