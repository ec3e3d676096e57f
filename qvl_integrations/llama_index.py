"""LlamaIndex adapters: a multimodal embedding model and a multimodal reranking postprocessor.

::

    from qvl_integrations.llama_index import QwenVLEmbedding, QwenVLRerank

    embed_model = QwenVLEmbedding(model_name="Qwen/Qwen3-VL-Embedding-2B")
    index = MultiModalVectorStoreIndex(
        nodes, embed_model=embed_model, image_embed_model=embed_model
    )
    postprocessor = QwenVLRerank(model_name="Qwen/Qwen3-VL-Reranker-2B", top_n=3)

Both load their model on first use and share it with every other instance
(LlamaIndex, LangChain or core) on the same checkpoint, device and dtype.
Pickling them carries their settings only, never weights.

How a node becomes one multimodal input (embedding as a transformation, and reranking):

* ``ImageNode``: its image (``image`` base64, else ``image_path``, else
  ``image_url``). For reranking its text, if any, is added.
* ``Node`` / ``Document``: ``text_resource`` text, ``image_resource`` and
  ``video_resource`` (``data``, ``path`` or ``url``), together.
* ``TextNode``: its text.

Texts are read with ``get_content(metadata_mode=MetadataMode.EMBED)``, as
LlamaIndex embeds and its sentence-transformer reranker reads them (so metadata
keys not listed in ``excluded_embed_metadata_keys`` are part of the text).
Paths and URLs in nodes are read as LlamaIndex itself reads them
(``ImageNode.resolve_image``): nodes are trusted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from io import BytesIO
from typing import Any

import numpy as np
from pydantic import Field

from ._adapter import CoreSettings, convert_each, name_failure
from .core.embedder import QwenVLEmbedder
from .core.inputs import ImageInput, MultimodalInput, VideoInput, to_input
from .core.reranker import DEFAULT_RERANK_BATCH_SIZE, QwenVLReranker
from .core.settings import (
    DEFAULT_EMBEDDING_INSTRUCTION,
    DEFAULT_QUERY_INSTRUCTION,
    DEFAULT_RERANK_INSTRUCTION,
)
from .errors import ConfigurationError, InputError, MissingDependencyError, UnsupportedInputError

try:
    import llama_index.core.instrumentation as instrument
    from llama_index.core.base.embeddings.base import Embedding
    from llama_index.core.bridge.pydantic import SerializeAsAny  # noqa: F401 (pydantic v2 check)
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.embeddings import MultiModalEmbedding
    from llama_index.core.instrumentation.events.embedding import (
        EmbeddingEndEvent,
        EmbeddingStartEvent,
    )
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import (
        BaseNode,
        ImageNode,
        ImageType,
        MediaResource,
        MetadataMode,
        Node,
        NodeWithScore,
        QueryBundle,
    )
except ImportError as _exc:  # pragma: no cover - exercised by test_package in a subprocess
    raise MissingDependencyError(
        "qvl_integrations.llama_index needs llama-index-core: "
        "pip install 'qvl-integrations[llamaindex]'"
    ) from _exc

__all__ = ["QwenVLEmbedding", "QwenVLRerank", "node_to_input"]

dispatcher = instrument.get_dispatcher(__name__)

DEFAULT_EMBED_BATCH_SIZE = 16
DEFAULT_TOP_N = 2


# -- nodes -> inputs -----------------------------------------------------------------------------
def _resource_image(resource: MediaResource) -> ImageInput:
    if resource.data:
        # MediaResource keeps data base64-encoded (its validator encodes raw bytes).
        mime = resource.mimetype or "application/octet-stream"
        return ImageInput.of(f"data:{mime};base64,{resource.data.decode('ascii')}")
    if resource.path is not None:
        return ImageInput.of(resource.path)
    if resource.url is not None:
        return ImageInput.of(str(resource.url))
    raise UnsupportedInputError("image_resource has no data, path or url")


def _resource_video(resource: MediaResource) -> VideoInput:
    if resource.path is not None:
        return VideoInput.of(resource.path)
    if resource.url is not None:
        return VideoInput.of(str(resource.url))
    if resource.data:
        raise UnsupportedInputError(
            "video_resource holds in-memory data, which cannot be decoded; give a path or url"
        )
    raise UnsupportedInputError("video_resource has no path or url")


def _image_of_node(node: ImageNode) -> ImageInput:
    if node.image:
        # ``image`` is base64 by definition: never let it be read as a file name.
        if node.image[:5].lower() == "data:":
            return ImageInput.of(node.image)
        mime = node.image_mimetype or "application/octet-stream"
        return ImageInput.of(f"data:{mime};base64,{node.image}")
    if node.image_path:
        return ImageInput.of(node.image_path)
    if node.image_url:
        return ImageInput.of(node.image_url)
    raise UnsupportedInputError("ImageNode has no image, image_path or image_url")


def node_to_input(
    node: BaseNode, *, metadata_mode: MetadataMode = MetadataMode.EMBED, with_text: bool = True
) -> MultimodalInput:
    """One multimodal input from a LlamaIndex node (see the module docstring).

    Args:
        node: An ``ImageNode``, ``Node``/``Document`` or ``TextNode``.
        metadata_mode: How the node's text is read.
        with_text: Whether an ``ImageNode``'s text joins its image.

    Raises:
        InputError: the node names no usable media, or its media is malformed.

    Example:
        >>> from llama_index.core.schema import TextNode
        >>> node_to_input(TextNode(text="a red square")).texts
        ('a red square',)
    """
    text = node.get_content(metadata_mode=metadata_mode)
    texts = (text,) if text else ()
    if isinstance(node, ImageNode):
        image = _image_of_node(node)
        return MultimodalInput(texts=texts if with_text else (), images=(image,))
    if isinstance(node, Node):
        images = (_resource_image(node.image_resource),) if node.image_resource else ()
        videos = (_resource_video(node.video_resource),) if node.video_resource else ()
        if node.audio_resource is not None:
            raise UnsupportedInputError("audio_resource is not supported by Qwen3-VL")
        if not (texts or images or videos):
            texts = ("",)
        return MultimodalInput(texts=texts, images=images, videos=videos)
    return MultimodalInput(texts=(text,))


def _node_label(node: Any) -> str | None:
    node_id = getattr(node, "node_id", None)
    return f"id={node_id!r}" if node_id else None


def _describe(value: Any) -> str:
    """A string for an instrumentation event's ``chunks`` (which must be strings)."""
    if isinstance(value, str):
        return value if len(value) <= 256 else f"<inline image, {len(value)} characters>"
    if isinstance(value, BytesIO):
        return f"<image, {len(value.getbuffer())} bytes>"
    if isinstance(value, MultimodalInput):
        parts = [*value.texts, *(i.describe() for i in value.images)]
        parts += [f"video {v.kind}" for v in value.videos]
        return " | ".join(parts) or "<empty>"
    return f"<{type(value).__name__}>"


# -- embedding -----------------------------------------------------------------------------------
class QwenVLEmbedding(CoreSettings, MultiModalEmbedding):  # type: ignore[misc]  # model_name: str|None
    """Qwen3-VL-Embedding as a LlamaIndex ``MultiModalEmbedding``: one space for text and images.

    Use one instance as both ``embed_model`` and ``image_embed_model`` of a
    ``MultiModalVectorStoreIndex``: text queries find images and texts, an
    image finds images. Settings are public fields, so they enter ``to_dict()``
    and the ingestion cache key; the model is private, loaded lazily and shared.

    Beyond the standard text, query and image methods (sync and async, batched
    by ``embed_batch_size``) it has ``get_image_query_embedding`` (an image as
    a query), ``get_video_embedding(s)`` and ``get_multimodal_embedding`` (any
    mix). As an ``IngestionPipeline`` transformation it embeds ``ImageNode``s
    by their image and ``Node``s by their image/video resources.

    Example:
        >>> embed_model = QwenVLEmbedding(model_name="Qwen/Qwen3-VL-Embedding-2B", dimensions=1024)
        >>> embed_model.to_dict()["dimensions"]
        1024
    """

    embedder: QwenVLEmbedder | None = Field(
        default=None, exclude=True, description="A built core embedder to use as is."
    )
    embed_batch_size: int = Field(
        default=DEFAULT_EMBED_BATCH_SIZE, gt=0, le=2048, description="Inputs per forward pass."
    )
    query_instruction: str = Field(
        default=DEFAULT_QUERY_INSTRUCTION, min_length=1, description="Instruction for queries."
    )
    text_instruction: str = Field(
        default=DEFAULT_EMBEDDING_INSTRUCTION,
        min_length=1,
        description="Instruction for texts, images, videos and nodes (the document side).",
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Matryoshka width: keep the first d components."
    )
    normalize: bool = Field(default=True, description="L2-normalise the vectors.")

    def model_post_init(self, context: Any, /) -> None:
        """Attach (or build, without loading) the core embedder."""
        self.attach_core(self.embedder, QwenVLEmbedder, "embedder")

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this component under."""
        return "QwenVLEmbedding"

    @property
    def client(self) -> QwenVLEmbedder:
        """The core embedder for the current settings (loads nothing by itself)."""
        return self.current_core(QwenVLEmbedder)

    # -- core calls ------------------------------------------------------------------------------
    def _embed(
        self, items: Sequence[MultimodalInput], instruction: str, show_progress: bool | None = None
    ) -> list[Embedding]:
        vectors: np.ndarray = self.client.embed(
            items,
            instruction=instruction,
            dim=self.dimensions,
            normalize=self.normalize,
            batch_size=self.embed_batch_size,
            show_progress=self.show_progress if show_progress is None else show_progress,
        )
        return vectors.tolist()

    def _convert(
        self, values: Sequence[Any], make: Callable[[Any], MultimodalInput]
    ) -> list[MultimodalInput]:
        return convert_each(values, make, label=_node_label)

    def _with_events(
        self,
        values: Sequence[Any],
        compute: Callable[[], list[Embedding]],
        callbacks: bool = True,
    ) -> list[Embedding]:
        """Run ``compute`` between the standard embedding start and end events.

        ``callbacks=False`` leaves the legacy callback event to the caller (the
        base class's single-image methods already send one).
        """
        chunks = [_describe(v) for v in values]
        dispatcher.event(EmbeddingStartEvent(model_dict=self.to_payload()))
        if callbacks:
            with self.callback_manager.event(
                CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: self.to_payload()}
            ) as event:
                vectors = compute()
                event.on_end(
                    payload={EventPayload.CHUNKS: chunks, EventPayload.EMBEDDINGS: vectors}
                )
        else:
            vectors = compute()
        dispatcher.event(EmbeddingEndEvent(chunks=chunks, embeddings=vectors))
        return vectors

    def _image_chunk(
        self, chunk: list[ImageType], offset: int, callbacks: bool = True
    ) -> list[Embedding]:
        """One ``embed_batch_size`` chunk of an image batch; errors name the whole-list index."""
        try:
            items = self._convert(chunk, self._image)
            return self._with_events(
                chunk, lambda: self._embed(items, self.text_instruction), callbacks
            )
        except InputError as exc:
            if exc.index is not None:
                exc.at(exc.index + offset)
            raise

    def _chunks(self, values: Sequence[Any]) -> list[tuple[int, list[Any]]]:
        size = self.embed_batch_size
        return [
            (start, list(values[start : start + size])) for start in range(0, len(values), size)
        ]

    @staticmethod
    def _text(text: str) -> MultimodalInput:
        if not isinstance(text, str):
            raise UnsupportedInputError(f"expected a string, got {type(text).__name__}")
        return MultimodalInput(texts=(text,))

    @staticmethod
    def _image(image: ImageType) -> MultimodalInput:
        return MultimodalInput(images=(ImageInput.of(image),))

    @staticmethod
    def _video(video: Any) -> MultimodalInput:
        return MultimodalInput(videos=(VideoInput.of(video),))

    # -- BaseEmbedding hooks (the public methods around them emit the text events) ---------------
    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed(self._convert([query], self._text), self.query_instruction)[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed(self._convert(texts, self._text), self.text_instruction)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    # -- images (LlamaIndex emits no instrumentation events for these; we do) --------------------
    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._get_image_embeddings([img_file_path])[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return await asyncio.to_thread(self._get_image_embedding, img_file_path)

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        # Reached from the base class's public methods, which send the callback event.
        return self._image_chunk(img_file_paths, 0, callbacks=False)

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_image_embeddings, img_file_paths)

    @dispatcher.span
    def get_image_embedding_batch(
        self, img_file_paths: list[ImageType], show_progress: bool = False
    ) -> list[Embedding]:
        """Embed images in chunks of ``embed_batch_size``, with events per chunk.

        A bad image's error names its index in ``img_file_paths``.
        """
        out: list[Embedding] = []
        chunks = self._chunks(img_file_paths)
        if show_progress:
            from tqdm.auto import tqdm

            chunks = list(tqdm(chunks, desc="Generating image embeddings"))
        for start, chunk in chunks:
            out.extend(self._image_chunk(chunk, start))
        return out

    @dispatcher.span
    async def aget_image_embedding_batch(
        self, img_file_paths: list[ImageType], show_progress: bool = False
    ) -> list[Embedding]:
        """:meth:`get_image_embedding_batch` with chunks in worker threads.

        The event loop stays free. At most ``num_workers`` chunks (2 when
        unset) are in flight at once: one preparing its pixels while another
        runs on the shared model, without every chunk's pixels held at once.
        """
        limit = asyncio.Semaphore(max(1, self.num_workers or 2))

        async def run(start: int, chunk: list[ImageType]) -> list[Embedding]:
            async with limit:
                return await asyncio.to_thread(self._image_chunk, chunk, start)

        jobs = [run(start, chunk) for start, chunk in self._chunks(img_file_paths)]
        if show_progress:
            from tqdm.asyncio import tqdm_asyncio

            results = await tqdm_asyncio.gather(*jobs, desc="Generating image embeddings")
        else:
            results = await asyncio.gather(*jobs)
        return [vector for chunk in results for vector in chunk]

    @dispatcher.span
    def get_image_query_embedding(self, img_file_path: ImageType) -> Embedding:
        """Embed an image as a query (with ``query_instruction``), e.g. to find texts by image."""
        items = self._convert([img_file_path], self._image)
        return self._with_events(
            [img_file_path], lambda: self._embed(items, self.query_instruction)
        )[0]

    async def aget_image_query_embedding(self, img_file_path: ImageType) -> Embedding:
        """:meth:`get_image_query_embedding` without blocking the event loop."""
        return await asyncio.to_thread(self.get_image_query_embedding, img_file_path)

    # -- videos and mixes ------------------------------------------------------------------------
    @dispatcher.span
    def get_video_embeddings(self, videos: Sequence[Any]) -> list[Embedding]:
        """Embed videos (file paths, URLs or lists of frames): one vector per video."""
        if isinstance(videos, (str, bytes)):
            raise ConfigurationError("videos must be a list; use get_video_embedding for one")
        items = self._convert(videos, self._video)
        return self._with_events(videos, lambda: self._embed(items, self.text_instruction))

    def get_video_embedding(self, video: Any) -> Embedding:
        """Embed one video (file path, URL or list of frames)."""
        return self.get_video_embeddings([video])[0]

    async def aget_video_embeddings(self, videos: Sequence[Any]) -> list[Embedding]:
        """:meth:`get_video_embeddings` without blocking the event loop."""
        return await asyncio.to_thread(self.get_video_embeddings, videos)

    async def aget_video_embedding(self, video: Any) -> Embedding:
        """:meth:`get_video_embedding` without blocking the event loop."""
        return await asyncio.to_thread(self.get_video_embedding, video)

    def _mixed(self, value: Any) -> MultimodalInput:
        if isinstance(value, BaseNode):
            return node_to_input(value)
        return to_input(value)

    @dispatcher.span
    def get_multimodal_embeddings(
        self, inputs: Sequence[Any], *, query: bool = False
    ) -> list[Embedding]:
        """Embed mixed inputs: nodes, authors'-format dicts, strings, PIL images...

        ``query=True`` uses ``query_instruction`` instead of ``text_instruction``.
        """
        if isinstance(inputs, (str, bytes)):
            raise ConfigurationError("inputs must be a list; use get_multimodal_embedding for one")
        items = self._convert(inputs, self._mixed)
        instruction = self.query_instruction if query else self.text_instruction
        return self._with_events(items, lambda: self._embed(items, instruction))

    def get_multimodal_embedding(self, value: Any, *, query: bool = False) -> Embedding:
        """Embed one mixed input, e.g. ``{"text": "caption", "image": "page.png"}`` or a node."""
        return self.get_multimodal_embeddings([value], query=query)[0]

    async def aget_multimodal_embeddings(
        self, inputs: Sequence[Any], *, query: bool = False
    ) -> list[Embedding]:
        """:meth:`get_multimodal_embeddings` without blocking the event loop."""
        return await asyncio.to_thread(self.get_multimodal_embeddings, inputs, query=query)

    async def aget_multimodal_embedding(self, value: Any, *, query: bool = False) -> Embedding:
        """:meth:`get_multimodal_embedding` without blocking the event loop."""
        return await asyncio.to_thread(self.get_multimodal_embedding, value, query=query)

    # -- as a transformation ---------------------------------------------------------------------
    @staticmethod
    def _has_media(node: BaseNode) -> bool:
        if isinstance(node, ImageNode):
            return True
        return isinstance(node, Node) and any(
            r is not None for r in (node.image_resource, node.video_resource, node.audio_resource)
        )

    def _embed_media_nodes(
        self, nodes: Sequence[BaseNode], positions: Sequence[int], show_progress: bool | None
    ) -> None:
        """Embed nodes with media in place; errors name the node's position in the whole list."""
        try:
            items = self._convert(nodes, lambda n: node_to_input(n, with_text=False))
            vectors = self._with_events(
                items, lambda: self._embed(items, self.text_instruction, show_progress)
            )
        except InputError as exc:
            if exc.index is not None and 0 <= exc.index < len(nodes):
                exc.at(positions[exc.index], None, exc.name or _node_label(nodes[exc.index]))
            raise
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector

    def _partition(self, nodes: Sequence[BaseNode]) -> tuple[list[int], list[int]]:
        media = [i for i, node in enumerate(nodes) if self._has_media(node)]
        chosen = set(media)
        return media, [i for i in range(len(nodes)) if i not in chosen]

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Embed nodes in place: ``ImageNode``s by their image, ``Node``s by all their media.

        Nodes without media take LlamaIndex's own text path (its
        ``embeddings_cache``, events and batches by ``embed_batch_size``).
        """
        media, text = self._partition(nodes)
        if text:
            contents = [nodes[i].get_content(metadata_mode=MetadataMode.EMBED) for i in text]
            vectors = self.get_text_embedding_batch(
                contents, show_progress=bool(kwargs.get("show_progress"))
            )
            for i, vector in zip(text, vectors, strict=True):
                nodes[i].embedding = vector
        if media:
            self._embed_media_nodes([nodes[i] for i in media], media, kwargs.get("show_progress"))
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """:meth:`__call__` without blocking the event loop."""
        media, text = self._partition(nodes)
        if text:
            contents = [nodes[i].get_content(metadata_mode=MetadataMode.EMBED) for i in text]
            vectors = await self.aget_text_embedding_batch(
                contents, show_progress=bool(kwargs.get("show_progress"))
            )
            for i, vector in zip(text, vectors, strict=True):
                nodes[i].embedding = vector
        if media:
            await asyncio.to_thread(
                self._embed_media_nodes,
                [nodes[i] for i in media],
                media,
                kwargs.get("show_progress"),
            )
        return nodes


# -- reranking -----------------------------------------------------------------------------------
class QwenVLRerank(CoreSettings, BaseNodePostprocessor):
    """Qwen3-VL-Reranker as a LlamaIndex node postprocessor: text and image nodes on one scale.

    The query is the bundle's text and/or its ``image_path``. Returns new
    ``NodeWithScore`` objects, best first, scored ``P(yes)`` in ``[0, 1]``;
    the input nodes are not changed (with ``keep_retrieval_score`` the
    returned node is a copy whose metadata holds ``retrieval_score``).

    Example:
        >>> rerank = QwenVLRerank(model_name="Qwen/Qwen3-VL-Reranker-2B", top_n=3)
        >>> rerank.top_n
        3
    """

    reranker: QwenVLReranker | None = Field(
        default=None, exclude=True, description="A built core reranker to use as is."
    )
    top_n: int | None = Field(default=DEFAULT_TOP_N, ge=1, description="Nodes kept; None: all.")
    instruction: str = Field(
        default=DEFAULT_RERANK_INSTRUCTION, min_length=1, description="Task instruction."
    )
    keep_retrieval_score: bool = Field(
        default=False, description="Keep the retriever's score in metadata['retrieval_score']."
    )
    batch_size: int = Field(default=DEFAULT_RERANK_BATCH_SIZE, ge=1, description="Pairs per pass.")

    def model_post_init(self, context: Any, /) -> None:
        """Attach (or build, without loading) the core reranker."""
        self.attach_core(self.reranker, QwenVLReranker, "reranker")

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this component under."""
        return "QwenVLRerank"

    @property
    def client(self) -> QwenVLReranker:
        """The core reranker for the current settings (loads nothing by itself)."""
        return self.current_core(QwenVLReranker)

    def _prepare(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[MultimodalInput, list[MultimodalInput]]:
        if query_bundle is None:
            raise ConfigurationError("QwenVLRerank needs a query (query_bundle or query_str)")
        texts = (query_bundle.query_str,) if query_bundle.query_str else ()
        image = query_bundle.image_path
        if not (texts or image):
            raise ConfigurationError("the query bundle has neither query_str nor image_path")
        try:
            images = (ImageInput.of(image),) if image else ()
            query = MultimodalInput(texts=texts, images=images)
        except InputError as exc:
            raise exc.at(None, "query") from exc.__cause__
        docs = convert_each(
            [scored.node for scored in nodes],
            lambda node: node_to_input(node, metadata_mode=MetadataMode.EMBED),
            role="document",
            label=_node_label,
        )
        return query, docs

    def _score(
        self, query: MultimodalInput, docs: list[MultimodalInput], nodes: list[NodeWithScore]
    ) -> np.ndarray:
        try:
            return self.client.score(
                query,
                docs,
                instruction=self.instruction,
                batch_size=self.batch_size,
                show_progress=self.show_progress,
            )
        except InputError as exc:
            if exc.role == "document":
                name_failure(exc, [scored.node for scored in nodes], _node_label)
            raise

    def _finish(self, nodes: list[NodeWithScore], scores: np.ndarray) -> list[NodeWithScore]:
        top_n = self.top_n
        if top_n is not None and (
            isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1
        ):
            raise ConfigurationError(f"top_n must be a positive int or None, got {top_n!r}")
        out = []
        for index in np.argsort(-scores, kind="stable"):
            scored = nodes[int(index)]
            node = scored.node
            if self.keep_retrieval_score:
                metadata = {**node.metadata, "retrieval_score": scored.score}
                node = node.model_copy(update={"metadata": metadata})
            out.append(NodeWithScore(node=node, score=float(scores[index])))
        return out if self.top_n is None else out[: self.top_n]

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> None:
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=nodes,
                top_n=self.top_n if self.top_n is not None else len(nodes),
                model_name=self.model_name or "",
            )
        )

    def _callback_payload(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> dict[Any, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model_name,
            EventPayload.QUERY_STR: query_bundle.query_str if query_bundle else None,
            EventPayload.TOP_K: self.top_n,
        }

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        self._start(nodes, query_bundle)
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        query, docs = self._prepare(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._callback_payload(nodes, query_bundle)
        ) as event:
            reranked = self._finish(nodes, self._score(query, docs, nodes))
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        self._start(nodes, query_bundle)
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        query, docs = self._prepare(nodes, query_bundle)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._callback_payload(nodes, query_bundle)
        ) as event:
            scores = await asyncio.to_thread(self._score, query, docs, nodes)
            reranked = self._finish(nodes, scores)
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked
