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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .core.base import ModelRunner
from .core.inputs import MultimodalInput
from .core.sources import MediaAccess
from .errors import ConfigurationError, InputError

__all__ = ["CoreSettings", "DocumentAccessSettings", "convert_each", "name_failure"]

_Runner = TypeVar("_Runner", bound=ModelRunner)

#: A framework object's label for error messages (e.g. ``"id='d7'"``), or ``None``.
Labeler = Callable[[Any], "str | None"]


def _no_label(value: Any) -> str | None:
    return None


def convert_each(
    values: Sequence[Any],
    make: Callable[[Any], MultimodalInput],
    *,
    role: str | None = None,
    label: Labeler = _no_label,
) -> list[MultimodalInput]:
    """``make`` applied to each value; a bad one's error names its index, role and label."""
    items = []
    for index, value in enumerate(values):
        try:
            items.append(make(value))
        except InputError as exc:
            raise exc.at(index, role, label(value)) from exc.__cause__
    return items


def name_failure(exc: InputError, values: Sequence[Any], label: Labeler) -> InputError:
    """Add the label of ``values[exc.index]`` to an error the core raised for it."""
    if exc.index is not None and 0 <= exc.index < len(values) and exc.name is None:
        exc.at(exc.index, None, label(values[exc.index]))
    return exc


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
    "max_image_pixels",
    "url_timeout_s",
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
    max_image_pixels: int | None = Field(
        default=None, ge=1, description="Largest decoded image accepted (bomb guard)."
    )
    url_timeout_s: float | None = Field(default=None, gt=0, description="Time-out per URL fetch.")
    max_batch_tokens: int | None = Field(default=None, ge=1, description="Token budget per batch.")
    show_progress: bool | None = Field(default=None, description="tqdm bar; None: long jobs only.")

    _core_obj: Any = PrivateAttr(default=None)
    _core_key: Any = PrivateAttr(default=None)
    _given_field: str | None = PrivateAttr(default=None)
    _given_obj: Any = PrivateAttr(default=None)

    def core_kwargs(self) -> dict[str, Any]:
        """Constructor arguments for the core model, from the fields the user set."""
        kwargs = {name: getattr(self, name) for name in _CORE_FIELDS}
        return {name: value for name, value in kwargs.items() if value is not None}

    def _core_settings_key(self) -> tuple[Any, ...]:
        return (self.model_name, *sorted(self.core_kwargs().items()))

    def attach_core(self, given: _Runner | None, factory: type[_Runner], field: str) -> None:
        """Adopt ``given`` (a built core model), or build one from the fields.

        A given core's settings are copied into the fields, so ``to_dict()``,
        pickling and cache keys describe the model that really runs. Building
        loads nothing; the weights load on the first call and are shared with
        every instance on the same checkpoint, device and dtype.

        Raises:
            ConfigurationError: core options that contradict the given core,
                or ``given`` of the wrong type.
        """
        self._given_field = field
        if given is None:
            core = factory(self.model_name, **self.core_kwargs())
            if self.model_name is None:
                self.model_name = os.fspath(core.model_name_or_path)
            self._core_obj, self._core_key = core, self._core_settings_key()
            return
        if not isinstance(given, factory):
            raise ConfigurationError(
                f"{field} must be a {factory.__name__}, got {type(given).__name__}"
            )
        actual = _settings_of(given)
        defaults = {name: type(self).model_fields[name].default for name in _CORE_FIELDS}
        conflicts = [
            name
            for name in _CORE_FIELDS
            if name in self.model_fields_set
            and getattr(self, name) not in (defaults[name], actual[name])
        ]
        if self.model_name is not None and self.model_name != given.model_name_or_path:
            conflicts.append("model_name")
        if conflicts:
            raise ConfigurationError(
                f"{', '.join(conflicts)} cannot differ from the given {field}'s settings; "
                f"configure the {factory.__name__} instead"
            )
        self._adopt(given)

    def _adopt(self, given: ModelRunner) -> None:
        """Use ``given`` as the core, its settings as the fields."""
        self.model_name = given.model_name_or_path
        for name, value in _settings_of(given).items():
            setattr(self, name, value)
        self._core_obj, self._core_key = given, self._core_settings_key()
        self._given_obj = given

    def _sync_given(self) -> None:
        """Adopt a given core that a copy or an assignment put in place of the attached one."""
        given = getattr(self, self._given_field) if self._given_field else None
        if given is not None and given is not self._given_obj and isinstance(given, ModelRunner):
            self._adopt(given)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy; one given a new ``embedder=`` / ``reranker=`` takes that core's settings."""
        copy = super().model_copy(update=update, deep=deep)
        copy._sync_given()
        return copy

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == getattr(self, "_given_field", None):
            self._sync_given()

    def current_core(self, factory: type[_Runner]) -> _Runner:
        """The core model for the current field values.

        A copy (``model_copy(update=...)``) or an assignment that changes a core
        setting gets a core built for the new values, never the old one; one
        that replaces the given core (``embedder=`` / ``reranker=``) uses the
        new core and takes its settings.
        """
        given = getattr(self, self._given_field) if self._given_field else None
        if given is not None and given is not self._given_obj:
            if not isinstance(given, factory):
                raise ConfigurationError(
                    f"{self._given_field} must be a {factory.__name__}, got {type(given).__name__}"
                )
            self._adopt(given)  # a copy or an assignment replaced the given core
        key = self._core_settings_key()
        if self._core_obj is None or self._core_key != key:
            self._core_obj = factory(self.model_name, **self.core_kwargs())
            self._core_key = key
        core: _Runner = self._core_obj
        return core


def _settings_of(core: ModelRunner) -> dict[str, Any]:
    """A built core's settings, as the values of the adapter fields."""
    vision = core.vision
    return {
        "device": str(core.device),
        "dtype": str(core.dtype).removeprefix("torch."),
        "attn_implementation": core.attn_implementation,
        "max_length": core.max_length,
        "min_pixels": vision.min_pixels,
        "max_pixels": vision.max_pixels,
        "fps": vision.fps,
        "max_frames": vision.max_frames,
        "total_pixels": vision.total_pixels,
        "max_image_pixels": vision.max_image_pixels,
        "url_timeout_s": vision.url_timeout_s,
        "max_batch_tokens": core.max_batch_tokens,
    }


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

    _access_obj: Any = PrivateAttr(default=None)
    _access_key: Any = PrivateAttr(default=None)

    def media_access(self) -> MediaAccess:
        """The access policy for media named inside documents (follows the current fields)."""
        key = (tuple(self.allowed_paths), self.allow_urls)
        if self._access_obj is None or self._access_key != key:
            self._access_obj = MediaAccess.create(self.allowed_paths, self.allow_urls)
            self._access_key = key
        policy: MediaAccess = self._access_obj
        return policy
