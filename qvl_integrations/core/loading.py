"""Loading checkpoints once and sharing them.

A loaded model is keyed by (checkpoint, role, device, dtype, attention
implementation). Every embedder or reranker that asks for the same key gets
the same object; it is freed when the last of them is gone. Forward passes
on one loaded model are serialised by its lock, and tokenizer calls by a second
one, so instances are safe to call from several threads (reading and resizing
media still runs in parallel).
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..errors import ConfigurationError, ModelLoadError
from . import _deps
from .encoding import TokenRules
from .pixels import PatchGeometry, install_patch_embedding

__all__ = [
    "LoadedModel",
    "ModelKey",
    "load_model",
    "resolve_attention",
    "resolve_device",
    "resolve_dtype",
]

Role = Literal["embedding", "reranker"]
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
_ATTENTION = ("sdpa", "eager", "flash_attention_2")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: cuda, then mps, then cpu."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigurationError(f"invalid device {device!r}: {exc}") from exc


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on a GPU, float32 on the CPU."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ConfigurationError(f"unsupported dtype {dtype}")
        return dtype
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ConfigurationError(
            f"unsupported dtype {dtype!r}; use 'auto' or one of {sorted(_DTYPES)}"
        ) from None


def resolve_attention(name: str | None, device: torch.device, dtype: torch.dtype) -> str:
    """``None``/``"auto"``: flash-attention 2 if installed (CUDA, half precision), else sdpa."""
    if name is None or name == "auto":
        if (
            device.type == "cuda"
            and dtype in (torch.float16, torch.bfloat16)
            and importlib.util.find_spec("flash_attn") is not None
        ):
            return "flash_attention_2"
        return "sdpa"
    if name not in _ATTENTION:
        raise ConfigurationError(
            f"attn_implementation must be 'auto' or one of {_ATTENTION}, got {name!r}"
        )
    return name


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models interchangeable."""

    checkpoint: str
    role: Role
    device: str
    dtype: torch.dtype
    attention: str


@dataclass(eq=False)
class LoadedModel:
    """A loaded trunk with its processor; shared between instances.

    Attributes:
        model: The ``Qwen3VLModel`` trunk (no LM head).
        processor: The checkpoint's ``Qwen3VLProcessor``.
        rules: Pad id and special-token ids for truncation and padding.
        score_vector: Reranker only: ``lm_head[yes] - lm_head[no]``.
        hidden_size: Width of the last hidden state.
        lock: Serialises forward passes.
        text_lock: Serialises tokenizer calls (the Rust tokenizer's settings are shared state).
    """

    key: ModelKey
    model: Any
    processor: Any
    rules: TokenRules
    hidden_size: int
    score_vector: torch.Tensor | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    text_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def device(self) -> torch.device:
        return torch.device(self.key.device)


_registry: weakref.WeakValueDictionary[ModelKey, LoadedModel] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _token_rules(processor: Any) -> TokenRules:
    tokenizer = processor.tokenizer
    special = set(tokenizer.all_special_ids)
    for name in (
        "image_token_id",
        "video_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    ):
        value = getattr(processor, name, None)
        if isinstance(value, int):
            special.add(value)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return TokenRules(
        pad_id=int(pad_id),
        special_ids=frozenset(special),
        geometry=PatchGeometry.from_processor(processor),
    )


def _word_id(tokenizer: Any, word: str, checkpoint: str) -> int:
    vocab = tokenizer.get_vocab()
    if word not in vocab:
        raise ModelLoadError(
            f"{checkpoint!r}: tokenizer has no single token {word!r}; not a reranker"
        )
    return int(vocab[word])


def _load(key: ModelKey) -> LoadedModel:
    transformers = _deps.qwen3_vl()
    common = {"dtype": key.dtype, "attn_implementation": key.attention}
    hf_logging = transformers.utils.logging
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    # The load report lists lm_head.weight as unexpected for the embedding trunk: by design.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        processor = transformers.AutoProcessor.from_pretrained(key.checkpoint)
        if key.role == "embedding":
            model = transformers.Qwen3VLModel.from_pretrained(key.checkpoint, **common)
            score_vector = None
        else:
            full = transformers.Qwen3VLForConditionalGeneration.from_pretrained(
                key.checkpoint, **common
            )
            tokenizer = processor.tokenizer
            weight = full.lm_head.weight.detach()
            yes = _word_id(tokenizer, "yes", key.checkpoint)
            no = _word_id(tokenizer, "no", key.checkpoint)
            score_vector = (weight[yes] - weight[no]).clone()
            model = full.model
            del full  # the LM head is not needed (freed unless tied to the embeddings)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"could not load {key.role} checkpoint {key.checkpoint!r}: {exc}"
        ) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    install_patch_embedding(model)
    model.to(key.device)
    model.eval()
    model.requires_grad_(False)
    if score_vector is not None:
        score_vector = score_vector.to(key.device)
    hidden_size = int(model.config.text_config.hidden_size)
    return LoadedModel(
        key=key,
        model=model,
        processor=processor,
        rules=_token_rules(processor),
        hidden_size=hidden_size,
        score_vector=score_vector,
    )


def load_model(key: ModelKey) -> LoadedModel:
    """Return the loaded model for ``key``, loading it on first use.

    Raises:
        ModelLoadError: the checkpoint is missing, unreadable or of the wrong kind.
    """
    with _registry_lock:
        loaded = _registry.get(key)
        if loaded is None:
            loaded = _load(key)
            _registry[key] = loaded
        return loaded
