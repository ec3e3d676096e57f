"""Compact storage formats for embeddings."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ConfigurationError

__all__ = ["Precision", "quantize"]

Precision = Literal["float32", "int8", "binary"]
_INT8_SCALE = 127.0


def quantize(vectors: np.ndarray, precision: Precision) -> np.ndarray:
    """Convert float32 vectors of shape ``(n, d)`` to a storage precision.

    * ``"float32"``: unchanged.
    * ``"int8"``: ``round(127 * x)`` clipped to ``[-127, 127]``; for unit
      vectors, a fixed scale that needs no calibration set, so a vector's
      code does not depend on the rest of the batch.
    * ``"binary"``: one bit per component (``x > 0``), packed big-endian into
      ``uint8``, shape ``(n, ceil(d / 8))``; compare with Hamming distance.

    Example:
        >>> quantize(np.array([[0.6, -0.8]], dtype=np.float32), "int8")
        array([[  76, -102]], dtype=int8)
        >>> quantize(np.array([[0.6, -0.8]], dtype=np.float32), "binary")
        array([[128]], dtype=uint8)
    """
    if precision == "float32":
        return vectors
    if precision == "int8":
        return np.clip(np.rint(vectors * _INT8_SCALE), -127, 127).astype(np.int8)
    if precision == "binary":
        return np.packbits(vectors > 0, axis=-1)
    raise ConfigurationError(f"precision must be 'float32', 'int8' or 'binary', got {precision!r}")
