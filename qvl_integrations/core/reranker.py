"""The reranker: Qwen3-VL-Reranker relevance scores for multimodal query-document pairs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigurationError, InputError, InputTooLongError, UnsupportedInputError
from .base import ModelRunner
from .encoding import last_token_states
from .inputs import MultimodalInput, to_input, to_inputs
from .pixels import image_patches
from .prefix import PrefixCache, find_shared_prefix, forward_last_with_prefix
from .prompts import rerank_conversation
from .settings import (
    DEFAULT_RERANK_INSTRUCTION,
    RERANKER_MAX_LENGTH,
    VisionSettings,
)
from .vision import PreparedMedia

__all__ = ["QwenVLReranker"]

DEFAULT_RERANK_BATCH_SIZE = 8


class QwenVLReranker(ModelRunner):
    """Scores how well each document answers a query: ``P(yes)`` in ``[0, 1]``.

    Query and documents may be text, images, videos or any mix. Pairs are
    batched; the score uses only the two LM-head rows for ``yes`` and ``no``:
    ``sigmoid((W[yes] - W[no]) . h)`` with ``h`` the last token's state.

    Args:
        model_name_or_path: Hub id or local directory. ``None`` reads the
            ``QVL_RERANKER_MODEL`` environment variable, else
            ``Qwen/Qwen3-VL-Reranker-2B``.
        device: As for :class:`QwenVLEmbedder`.
        dtype: As for :class:`QwenVLEmbedder`.
        attn_implementation: As for :class:`QwenVLEmbedder`.
        max_length: Most tokens per pair (10240); longer pairs lose ordinary
            tokens from the end of the document, never special or visual ones.
        min_pixels: Smallest image area after resizing, in pixels.
        max_pixels: Image pixel budget after resizing, in pixels.
        fps: Frames per second sampled from video files.
        max_frames: Most frames per video.
        total_pixels: Pixel budget for all frames of one video.
        max_image_pixels: Largest decoded image accepted (bomb guard).
        url_timeout_s: Time-out per http(s) fetch, in seconds.
        batch_size: Most pairs per forward pass.
        max_batch_tokens: Most (padded) tokens per forward pass; ``None``:
            16384 on a GPU, and on the CPU the call's largest input (so peak
            memory is that of one input at a time).
        show_progress: Progress bar; ``None`` shows one for 256+ documents.
        instruction: Default task instruction.

    Example:
        >>> rr = QwenVLReranker("Qwen/Qwen3-VL-Reranker-2B")  # doctest: +SKIP
        >>> rr.rank("a cat", ["a dog", {"image": "cat.png"}], top_k=1)  # doctest: +SKIP
        [(1, 0.93)]
    """

    _role = "reranker"
    _default_checkpoint = "Qwen/Qwen3-VL-Reranker-2B"
    _checkpoint_env = "QVL_RERANKER_MODEL"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "auto",
        max_length: int = RERANKER_MAX_LENGTH,
        min_pixels: int = VisionSettings.min_pixels,
        max_pixels: int = VisionSettings.max_pixels,
        fps: float = VisionSettings.fps,
        max_frames: int = VisionSettings.max_frames,
        total_pixels: int = VisionSettings.total_pixels,
        max_image_pixels: int = VisionSettings.max_image_pixels,
        url_timeout_s: float = VisionSettings.url_timeout_s,
        batch_size: int = DEFAULT_RERANK_BATCH_SIZE,
        max_batch_tokens: int | None = None,
        show_progress: bool | None = None,
        instruction: str = DEFAULT_RERANK_INSTRUCTION,
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
        if not isinstance(instruction, str) or not instruction.strip():
            raise ConfigurationError("instruction must be a non-empty string")
        self.instruction = instruction

    def score(
        self,
        query: Any,
        documents: Sequence[Any],
        *,
        instruction: str | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Relevance of each document to the query.

        Args:
            query: One input in any accepted form (text, image, video, dict,
                :class:`MultimodalInput`).
            documents: Inputs in any accepted form.
            instruction: Task instruction; defaults to the query's own
                ``instruction`` (dict form), then the instance's.
            batch_size: Overrides the instance's batch size for this call.
            show_progress: Overrides the instance's progress setting.

        Returns:
            float32 array ``(n,)`` of ``P(yes)``, ``n == len(documents)``.

        Raises:
            InputError: a bad query (``role="query"``) or document (its index).

        Example:
            >>> rr.score({"image": "q.png"}, ["a caption", {"image": "a.png"}])  # doctest: +SKIP
            array([0.12, 0.97], dtype=float32)
        """
        try:
            query_item = to_input(query)
        except InputError as exc:
            raise exc.at(None, "query") from exc.__cause__
        docs = to_inputs(documents, role="document")
        for index, doc in enumerate(docs):
            if doc.instruction is not None:
                raise UnsupportedInputError(
                    "documents cannot carry an instruction; pass instruction= to score()"
                ).at(index, "document")
        task = instruction or query_item.instruction or self.instruction
        out = np.zeros((len(docs),), dtype=np.float32)
        if not docs:
            return out
        try:
            query_cost = self._costs([query_item])[0]
            query_media = self._media(query_item, None)
        except InputError as exc:
            raise exc.at(None, "query") from exc.__cause__
        # The query's images recur in every pair: cut them into patches once per call.
        geometry = self.loaded.rules.geometry
        query_patches = {id(image): image_patches(image, geometry) for image in query_media.images}
        doc_costs = self._costs(docs, role="document")
        prefix = (
            self._shared_prefix(query_item, query_media, task, query_patches)
            if len(docs) > 1
            else None
        )
        if prefix is not None and prefix.ids is not None:
            # The shared prefix runs once: a batch's size is its documents' tokens.
            batches = self._plan(doc_costs, batch_size, floor=query_cost + max(doc_costs))
        else:
            batches = self._plan([query_cost + c for c in doc_costs], batch_size)
        return self._run(
            batches,
            lambda batch: self._score_batch(
                query_item, query_media, query_patches, docs, batch, task, prefix
            ),
            out,
            "Reranking",
            show_progress,
        )

    def rank(
        self,
        query: Any,
        documents: Sequence[Any],
        *,
        top_k: int | None = None,
        instruction: str | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> list[tuple[int, float]]:
        """Documents ordered best first, as ``(index, score)`` pairs.

        Ties keep the documents' original order. ``top_k`` keeps the first
        ``top_k`` pairs (all when ``None``).

        Raises:
            ConfigurationError: ``top_k`` is not a positive int.

        Example:
            >>> rr.rank("a cat", ["a dog", "a cat on a mat"], top_k=1)  # doctest: +SKIP
            [(1, 0.91)]
        """
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
        ):
            raise ConfigurationError(f"top_k must be a positive int or None, got {top_k!r}")
        scores = self.score(
            query,
            documents,
            instruction=instruction,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        return [(int(i), float(scores[i])) for i in order]

    # -- internals -------------------------------------------------------------------------------
    def _shared_prefix(
        self,
        query: MultimodalInput,
        query_media: PreparedMedia,
        instruction: str,
        query_patches: Mapping[int, tuple[torch.Tensor, list[int]]],
    ) -> PrefixCache:
        """The token prefix every pair of this query shares (see :mod:`.prefix`)."""
        no_media = PreparedMedia(images=[], videos=[])
        probes = [
            rerank_conversation(
                query, query_media, MultimodalInput(texts=(text,)), no_media, instruction
            )
            for text in ("0", "1")
        ]
        try:
            encoded = self._encode(probes, known_patches=query_patches)
        except InputTooLongError:
            return PrefixCache()  # the query alone overflows; the pairs will say so
        return find_shared_prefix(encoded)

    def _score_batch(
        self,
        query: MultimodalInput,
        query_media: PreparedMedia,
        query_patches: Mapping[int, tuple[torch.Tensor, list[int]]],
        docs: Sequence[MultimodalInput],
        batch: Sequence[int],
        instruction: str,
        prefix: PrefixCache | None,
    ) -> np.ndarray:
        loaded = self.loaded
        conversations = [
            rerank_conversation(
                query,
                query_media,
                docs[index],
                self._media(docs[index], index, "document"),
                instruction,
            )
            for index in batch
        ]
        encoded = self._encode(conversations, batch, "document", known_patches=query_patches)
        hidden = None
        if prefix is not None:
            with loaded.lock, torch.inference_mode():
                hidden = forward_last_with_prefix(
                    loaded.model,
                    encoded,
                    images_per_row=[len(query.images) + len(docs[i].images) for i in batch],
                    videos_per_row=[len(query.videos) + len(docs[i].videos) for i in batch],
                    shared_images=len(query.images),
                    shared_videos=len(query.videos),
                    cache=prefix,
                )
        if hidden is None:
            hidden = last_token_states(self._forward(encoded), encoded.lengths)
        assert loaded.score_vector is not None
        logits = hidden @ loaded.score_vector.to(hidden.dtype)
        return torch.sigmoid(logits.float()).cpu().numpy()
