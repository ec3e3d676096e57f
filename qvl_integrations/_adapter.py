"""Settings shared by the framework adapters (pydantic fields that build one core model).

Both LangChain and LlamaIndex components are pydantic models. Their options
that configure the core (checkpoint, device, vision budgets...) are the fields
of :class:`CoreSettings`; :meth:`CoreSettings.core_kwargs` turns the ones the
user set into keyword arguments of :class:`~qvl_integrations.QwenVLEmbedder` or
:class:`~qvl_integrations.QwenVLReranker`. Fields left at ``None`` keep the
core's defaults. This module imports neither framework.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .core.base import ModelRunner
from .core.sources import MediaAccess
from .errors import ConfigurationError

__all__ = ["CoreSettings", "DocumentAccessSettings"]

_Runner = TypeVar("_Runner", bound=ModelRunner)

#: Fields passed straight to the core constructor when set.
_CORE_FIELDS = (
    "device",
    "dtype",
    "attn_implementation",
    "max_length",
    "min_pixels",
    "max_pixels",
    "fps",
    "max_frames",
    "total_pixels",
    "max_batch_tokens",
)


class CoreSettings(BaseModel):
    """The core model's options as pydantic fields (unknown options are rejected)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    model_name: str | None = Field(
        default=None,
        description="Hub id or local directory; None reads the role's environment variable "
        "(QVL_EMBEDDING_MODEL / QVL_RERANKER_MODEL), then the 2B checkpoint.",
    )
    device: str | None = Field(default=None, description="cuda, mps, cpu; None picks the best.")
    dtype: str = Field(default="auto", description="auto (bf16 on GPU, float32 on CPU), or a name.")
    attn_implementation: str | None = Field(default=None, description="sdpa, eager, ...")
    max_length: int | None = Field(default=None, ge=16, description="Most tokens per input.")
    min_pixels: int | None = Field(default=None, ge=1, description="Smallest resized image area.")
    max_pixels: int | None = Field(default=None, ge=1, description="Image pixel budget.")
    fps: float | None = Field(default=None, gt=0, description="Frames per second from videos.")
    max_frames: int | None = Field(default=None, ge=2, description="Most frames per video.")
    total_pixels: int | None = Field(default=None, ge=1, description="Pixel budget per video.")
    max_batch_tokens: int | None = Field(default=None, ge=1, description="Token budget per batch.")
    show_progress: bool | None = Field(default=None, description="tqdm bar; None: long jobs only.")

    def core_kwargs(self) -> dict[str, Any]:
        """Constructor arguments for the core model, from the fields the user set."""
        kwargs = {name: getattr(self, name) for name in _CORE_FIELDS}
        return {name: value for name, value in kwargs.items() if value is not None}

    def attach_core(self, given: _Runner | None, factory: type[_Runner], field: str) -> _Runner:
        """The core model to use: ``given`` as is, or a new one from the fields.

        Building the core loads nothing; the weights load on the first call and
        are shared with every instance on the same checkpoint, device and dtype.

        Raises:
            ConfigurationError: core options given together with a built core,
                or ``given`` of the wrong type.
        """
        if given is not None:
            if not isinstance(given, factory):
                raise ConfigurationError(
                    f"{field} must be a {factory.__name__}, got {type(given).__name__}"
                )
            defaults = {name: type(self).model_fields[name].default for name in _CORE_FIELDS}
            explicit = [
                name
                for name in _CORE_FIELDS
                if name in self.model_fields_set and getattr(self, name) != defaults[name]
            ]
            if self.model_name is not None and self.model_name != given.model_name_or_path:
                explicit.append("model_name")
            if explicit:
                raise ConfigurationError(
                    f"{', '.join(explicit)} cannot be set together with {field}=; "
                    f"configure the {factory.__name__} instead"
                )
            self.model_name = given.model_name_or_path
            return given
        core = factory(self.model_name, **self.core_kwargs())
        if self.model_name is None:
            self.model_name = os.fspath(core.model_name_or_path)
        return core


class DocumentAccessSettings(BaseModel):
    """Which files and URLs named inside documents may be read (see :class:`MediaAccess`)."""

    allowed_paths: list[str] = Field(
        default_factory=list,
        description="Directories under which local files named inside documents (metadata, "
        "content blocks) may be read; empty: none.",
    )
    allow_urls: bool = Field(
        default=True, description="Whether http(s) URLs named inside documents are fetched."
    )

    def media_access(self) -> MediaAccess:
        """The access policy for media named inside documents."""
        return MediaAccess.create(self.allowed_paths, self.allow_urls)
