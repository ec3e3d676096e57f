"""Qwen3-VL-Embedding and Qwen3-VL-Reranker for multimodal retrieval and reranking.

The public API::

    from qvl_integrations import QwenVLEmbedder, QwenVLReranker

    emb = QwenVLEmbedder("Qwen/Qwen3-VL-Embedding-2B")   # loads on first use
    vectors = emb.embed(["a cat", {"image": "cat.png"}])  # (2, 2048) float32
    rr = QwenVLReranker("Qwen/Qwen3-VL-Reranker-2B")
    rr.rank("a cat", ["a dog", {"image": "cat.png"}])    # [(1, 0.97), (0, 0.02)]

Importing this package imports neither LangChain nor LlamaIndex; their
adapters (to come) will live in ``qvl_integrations.langchain`` and
``qvl_integrations.llama_index``.
"""

from . import errors
from .core import (
    ImageInput,
    MultimodalInput,
    QwenVLEmbedder,
    QwenVLReranker,
    VideoInput,
    to_input,
    to_inputs,
)
from .errors import (
    ConfigurationError,
    InputError,
    MediaDecodeError,
    MediaFetchError,
    MediaNotFoundError,
    QVLError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "ImageInput",
    "InputError",
    "MediaDecodeError",
    "MediaFetchError",
    "MediaNotFoundError",
    "MultimodalInput",
    "QVLError",
    "QwenVLEmbedder",
    "QwenVLReranker",
    "VideoInput",
    "errors",
    "to_input",
    "to_inputs",
]
