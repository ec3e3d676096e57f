"""What the embedder and the reranker share: options, lazy loading, costs, progress."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigurationError, InputError
from .batching import plan_batches, run_batches
from .encoding import EncodedBatch, encode_conversations
from .inputs import MultimodalInput
from .loading import (
    LoadedModel,
    ModelKey,
    Role,
    load_model,
    resolve_attention,
    resolve_device,
    resolve_dtype,
)
from .settings import DEFAULT_MAX_BATCH_TOKENS, VisionSettings
from .vision import PreparedMedia, estimate_visual_tokens, prepare_media

__all__ = ["ModelRunner"]

# Template tokens around the user content (system turn, role tags, tail): a batching estimate.
_PROMPT_OVERHEAD_TOKENS = 24
_PROGRESS_THRESHOLD = 256


class ModelRunner:
    """Common machinery; see :class:`QwenVLEmbedder` and :class:`QwenVLReranker`."""

    _role: Role
    _default_checkpoint: str
    _checkpoint_env: str

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None,
        *,
        device: str | torch.device | None,
        dtype: str | torch.dtype,
        attn_implementation: str | None,
        max_length: int,
        vision: VisionSettings,
        batch_size: int,
        max_batch_tokens: int | None,
        show_progress: bool | None,
    ) -> None:
        if model_name_or_path is None:
            model_name_or_path = os.environ.get(self._checkpoint_env) or self._default_checkpoint
        self.model_name_or_path = os.fspath(model_name_or_path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.attn_implementation = resolve_attention(attn_implementation, self.device, self.dtype)
        if not isinstance(max_length, int) or max_length < 16:
            raise ConfigurationError(f"max_length must be an int >= 16, got {max_length!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if max_batch_tokens is not None and (
            not isinstance(max_batch_tokens, int) or max_batch_tokens < 1
        ):
            raise ConfigurationError(
                f"max_batch_tokens must be an int >= 1, got {max_batch_tokens!r}"
            )
        self.max_length = max_length
        self.vision = vision
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.show_progress = show_progress
        self._loaded: LoadedModel | None = None
        self._load_lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------------
    @property
    def key(self) -> ModelKey:
        """The sharing key of this instance's model."""
        return ModelKey(
            checkpoint=self.model_name_or_path,
            role=self._role,
            device=str(self.device),
            dtype=self.dtype,
            attention=self.attn_implementation,
        )

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model, loaded on first access and shared with equal instances."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = load_model(self.key)
        return self._loaded

    @property
    def is_loaded(self) -> bool:
        """Whether this instance has loaded (or attached to) its model yet."""
        return self._loaded is not None

    def _plan(
        self, costs: Sequence[int], batch_size: int | None, floor: int = 0
    ) -> list[list[int]]:
        """Batches for items of these costs, under the call's batch size and token budget.

        ``floor`` raises the CPU default budget (the largest item) to at least that.
        """
        size = self.batch_size if batch_size is None else batch_size
        budget = self.max_batch_tokens
        if budget is None:
            # On a CPU, batching saves little time, so by default a batch holds no more
            # tokens than the call's largest input: peak memory stays that of one input.
            budget = DEFAULT_MAX_BATCH_TOKENS if self.device.type != "cpu" else max(*costs, floor)
        return plan_batches(costs, batch_size=size, max_tokens=budget)

    # -- preparation -------------------------------------------------------------------------
    def _text_costs(self, items: Sequence[MultimodalInput]) -> list[int]:
        tokenizer = self.loaded.processor.tokenizer
        joined = ["\n".join(item.texts) for item in items]
        if not any(joined):
            return [0] * len(items)
        with self.loaded.text_lock:
            encoded = tokenizer(joined, add_special_tokens=False)["input_ids"]
        return [min(len(ids), self.max_length) for ids in encoded]

    def _costs(self, items: Sequence[MultimodalInput], role: str | None = None) -> list[int]:
        """Estimated token count of each item (text + visual + template)."""
        text = self._text_costs(items)
        costs = []
        for index, item in enumerate(items):
            try:
                visual = estimate_visual_tokens(item, self.vision)
            except InputError as exc:
                exc.at(index, role)
                raise
            costs.append(min(text[index] + visual + _PROMPT_OVERHEAD_TOKENS, self.max_length))
        return costs

    def _media(
        self, item: MultimodalInput, index: int | None, role: str | None = None
    ) -> PreparedMedia:
        try:
            return prepare_media(item, self.vision)
        except InputError as exc:
            exc.at(index, role)
            raise

    def _encode(
        self,
        conversations: Sequence[list[dict[str, Any]]],
        indices: Sequence[int] | None = None,
        role: str | None = None,
        known_patches: Mapping[int, tuple[torch.Tensor, list[int]]] | None = None,
    ) -> EncodedBatch:
        """Encode a batch; an input error is re-pointed at ``indices[row]`` (the caller's index).

        ``known_patches``: see :func:`encode_conversations`.
        """
        loaded = self.loaded
        try:
            with loaded.text_lock:
                return encode_conversations(
                    loaded.processor,
                    conversations,
                    rules=loaded.rules,
                    max_length=self.max_length,
                    known_patches=known_patches,
                )
        except InputError as exc:
            if indices is not None:
                exc.at(indices[exc.index] if exc.index is not None else None, role)
            raise

    def _forward(self, batch: EncodedBatch) -> torch.Tensor:
        """Last hidden states of the trunk for one encoded batch."""
        loaded = self.loaded
        tensors = {k: v.to(loaded.device) for k, v in batch.tensors.items()}
        with loaded.lock, torch.inference_mode():
            output = loaded.model(**tensors, use_cache=False)
        hidden: torch.Tensor = output.last_hidden_state
        return hidden

    def _run(
        self,
        batches: Sequence[Sequence[int]],
        compute: Callable[[Sequence[int]], np.ndarray],
        out: np.ndarray,
        desc: str,
        show: bool | None,
    ) -> np.ndarray:
        """:func:`run_batches` with a progress bar when asked for (or for long jobs)."""
        show = self.show_progress if show is None else show
        if show is None:
            show = len(out) >= _PROGRESS_THRESHOLD
        if not show:
            return run_batches(batches, compute, out)
        from tqdm.auto import tqdm

        with tqdm(total=len(out), desc=desc, unit="input") as bar:
            return run_batches(batches, compute, out, progress=bar.update)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only: never the weights, nor the lock."""
        state = self.__dict__.copy()
        state["_loaded"] = None
        del state["_load_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the settings; the model loads (or re-attaches) on first use."""
        self.__dict__.update(state)
        self._load_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.model_name_or_path!r}, device={str(self.device)!r}, "
            f"dtype={str(self.dtype).removeprefix('torch.')!r}, loaded={self.is_loaded})"
        )
