"""The exceptions raised by qvl-integrations.

Every error the package raises on purpose derives from :class:`QVLError`::

    QVLError
    ├── InputError (ValueError)          one input cannot be used; names its index
    │   ├── UnsupportedInputError (TypeError)   a type or key we do not accept
    │   ├── MediaNotFoundError (FileNotFoundError)  a file that is not there
    │   ├── MediaDecodeError                    empty, corrupt, truncated, malformed
    │   │                                       (image, video, base64, data URI)
    │   ├── ImageTooLargeError                  more pixels than the cap (a bomb)
    │   ├── MediaFetchError (OSError)           an http(s) URL that could not be read
    │   ├── MediaAccessError (PermissionError)  a file or URL the access policy refuses
    │   └── InputTooLongError                   special tokens alone exceed max_length
    ├── ConfigurationError (ValueError)  a bad constructor option or call argument
    ├── ModelLoadError (OSError)         the checkpoint could not be loaded
    └── MissingDependencyError (ImportError)  an optional package is not installed

An :class:`InputError` raised for one of several inputs carries ``index`` (the
position in the list the caller passed) and, for reranking, ``role``
(``"query"`` or ``"document"``); its message starts with both. The exception
that caused it is chained (``raise ... from exc``), so tracebacks show the
original PIL, decoder or network error.

Example:
    >>> from qvl_integrations.errors import InputError, MediaNotFoundError
    >>> err = MediaNotFoundError("image file not found: cat.png").at(3)
    >>> isinstance(err, InputError), err.index
    (True, 3)
    >>> str(err)
    'input 3: image file not found: cat.png'
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ImageTooLargeError",
    "InputError",
    "InputTooLongError",
    "MediaAccessError",
    "MediaDecodeError",
    "MediaFetchError",
    "MediaNotFoundError",
    "MissingDependencyError",
    "ModelLoadError",
    "QVLError",
    "UnsupportedInputError",
]


class QVLError(Exception):
    """Base class of every error raised on purpose by qvl-integrations."""


class InputError(QVLError, ValueError):
    """One input cannot be used.

    Attributes:
        reason: What is wrong, without the position.
        index: Position of the input in the list the caller passed, if known.
        role: ``"query"`` or ``"document"`` when reranking, else ``None``.
        name: A label of the input besides its index (an adapter's document id).
    """

    def __init__(
        self,
        reason: str,
        *,
        index: int | None = None,
        role: str | None = None,
        name: str | None = None,
    ) -> None:
        self.reason = reason
        self.index = index
        self.role = role
        self.name = name
        super().__init__(self._render())

    def _render(self) -> str:
        if self.index is None and self.role is None and self.name is None:
            return self.reason
        where = self.role or "input"
        if self.index is not None:
            where = f"{where} {self.index}"
        if self.name is not None:
            where = f"{where} ({self.name})"
        return f"{where}: {self.reason}"

    def at(self, index: int | None, role: str | None = None, name: str | None = None) -> InputError:
        """Record where the bad input sits and return ``self`` (for ``raise err.at(i)``).

        ``name`` is an optional label such as a document id, shown after the index.
        """
        self.index = index
        if role is not None:
            self.role = role
        if name is not None:
            self.name = name
        self.args = (self._render(),)
        return self

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_input_error, (type(self), self.reason, self.index, self.role, self.name))


def _rebuild_input_error(
    cls: type[InputError],
    reason: str,
    index: int | None,
    role: str | None,
    name: str | None = None,
) -> InputError:
    return cls(reason, index=index, role=role, name=name)


class UnsupportedInputError(InputError, TypeError):
    """An input of a type, form or key that the package does not accept."""


class MediaNotFoundError(InputError, FileNotFoundError):
    """A local image or video file that does not exist or is not a file."""


class MediaDecodeError(InputError):
    """Media that cannot be decoded: empty, corrupt, truncated or malformed."""


class ImageTooLargeError(InputError):
    """An image with more pixels than the configured cap (decompression bomb guard)."""


class MediaFetchError(InputError, OSError):
    """An http(s) URL that could not be fetched (unreachable, error status, time-out)."""


class MediaAccessError(InputError, PermissionError):
    """A local file or URL named inside a document that the access policy does not allow.

    Adapters read media named in document metadata only from the roots the user
    allowed (see :class:`qvl_integrations.core.sources.MediaAccess`).
    """


class InputTooLongError(InputError):
    """An input whose special and visual tokens alone exceed ``max_length``."""


class ConfigurationError(QVLError, ValueError):
    """A constructor option or call argument with an invalid value."""


class ModelLoadError(QVLError, OSError):
    """The checkpoint could not be loaded (missing files, wrong architecture, offline)."""


class MissingDependencyError(QVLError, ImportError):
    """An optional package needed for this feature is not installed."""
