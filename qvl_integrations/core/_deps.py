"""Imports of the heavy dependencies, in the order the guards need.

``torchvision`` must be imported through :func:`ensure_torchvision` before
``transformers``' Qwen3-VL classes or ``qwen_vl_utils`` are touched.
"""

from __future__ import annotations

import functools
from types import ModuleType

from .._compat import ensure_torchvision, prepare_video_reader_backend


@functools.cache
def vision_process() -> ModuleType:
    """The ``qwen_vl_utils.vision_process`` module, imported safely."""
    ensure_torchvision()
    prepare_video_reader_backend()
    from qwen_vl_utils import vision_process as module

    return module


@functools.cache
def qwen3_vl() -> ModuleType:
    """The ``transformers`` top-level module, with Qwen3-VL importable."""
    ensure_torchvision()
    import transformers

    return transformers
