"""The framework-free model core: inputs, media, prompts, batching, embedder, reranker."""

from .embedder import QwenVLEmbedder
from .inputs import ImageInput, MultimodalInput, VideoInput, to_input, to_inputs
from .reranker import QwenVLReranker

__all__ = [
    "ImageInput",
    "MultimodalInput",
    "QwenVLEmbedder",
    "QwenVLReranker",
    "VideoInput",
    "to_input",
    "to_inputs",
]
