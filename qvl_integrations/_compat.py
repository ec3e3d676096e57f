"""Import guards for broken third-party builds.

PyPI's ``torchvision`` 0.28.0 is a CUDA build. Next to a CPU-only torch its C
extension cannot load, and its import then fails while registering fake
kernels for two operators the extension would have defined::

    RuntimeError: operator torchvision::nms does not exist

``transformers`` (to build the Qwen3-VL video processor) and ``qwen-vl-utils``
(at import time) both need ``torchvision``, although only its pure-Python
parts (transforms, resize). :func:`ensure_torchvision` imports it; only when
the import fails with exactly that error does it declare the two operator
schemas and import again. Where torchvision imports normally (a CUDA torch on
a GPU machine, or a matching CPU build) it changes nothing.

After the workaround ``torchvision.ops.nms`` still cannot run: it has a schema
but no kernel. Nothing in this package uses it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

_MISSING_OP_MESSAGE = "operator torchvision::nms does not exist"
# Schemas of the two operators whose fake kernels torchvision registers on import.
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_lock = threading.Lock()
_library: object | None = None  # kept alive: the schemas vanish with the Library object


def _purge_torchvision_modules() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def _declare_missing_schemas() -> None:
    global _library
    import torch

    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _library = library


def ensure_torchvision() -> ModuleType:
    """Import torchvision, working around a CUDA-only build next to a CPU torch.

    Returns:
        The imported ``torchvision`` module.

    Raises:
        RuntimeError: torchvision fails to import for any other reason; the
            original error is re-raised untouched.

    Example:
        >>> tv = ensure_torchvision()
        >>> tv.__name__
        'torchvision'
    """
    with _lock:
        module = sys.modules.get("torchvision")
        if module is not None and hasattr(module, "transforms"):
            return module
        try:
            return importlib.import_module("torchvision")
        except RuntimeError as exc:
            if _MISSING_OP_MESSAGE not in str(exc):
                raise
            _purge_torchvision_modules()
            _declare_missing_schemas()
            return importlib.import_module("torchvision")


def prepare_video_reader_backend() -> None:
    """Steer qwen-vl-utils away from a torchcodec that cannot load.

    qwen-vl-utils picks torchcodec whenever it is installed, and PyPI's
    torchcodec is a CUDA build that fails to load on CPU-only machines. Unless
    the user chose a reader with ``FORCE_QWENVL_VIDEO_READER``, pick decord
    when torchcodec is present but unusable. Must run before qwen-vl-utils is
    imported (it reads the variable at import time).
    """
    if "FORCE_QWENVL_VIDEO_READER" in os.environ or "qwen_vl_utils" in sys.modules:
        return
    if importlib.util.find_spec("torchcodec") is None:
        return
    try:
        importlib.import_module("torchcodec.decoders")
    except Exception:  # noqa: BLE001 - any failure means the build is unusable here
        if importlib.util.find_spec("decord") is not None:
            os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
