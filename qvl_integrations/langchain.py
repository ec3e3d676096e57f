"""LangChain adapters: multimodal ``Embeddings`` and a reranking document compressor.

::

    from qvl_integrations.langchain import QwenVLEmbeddings, QwenVLRerank

    embeddings = QwenVLEmbeddings(model_name="Qwen/Qwen3-VL-Embedding-2B")
    reranker = QwenVLRerank(model_name="Qwen/Qwen3-VL-Reranker-2B", top_n=3)

Both load their model on first use and share it with every other instance
(LangChain, LlamaIndex or core) on the same checkpoint, device and dtype.

How a LangChain ``Document`` becomes one multimodal input (the same rule
everywhere in this module):

* ``page_content`` is text, unless it is an image given inline: a
  ``data:image/...`` URI, or raw base64 of an image file (what Chroma's
  ``add_images`` stores). Empty ``page_content`` adds no text.
* ``metadata["image"]``, ``["images"]``, ``["image_uri"]``, ``["image_url"]``,
  ``["image_path"]``: one image or a list (path, ``file://`` URI, http(s)
  URL, data URI or base64).
* ``metadata["video"]``, ``["videos"]``, ``["video_uri"]``, ``["video_url"]``,
  ``["video_path"]``: a video file or URL, a list of frames (one video), or a
  list of videos, read as the core reads the authors' ``video`` field.
* ``metadata["content_blocks"]``: LangChain v1 standard content blocks
  (``{"type": "image", "url" | "base64" | "path": ...}``, ``"video"``,
  ``"text"``), see :func:`qvl_integrations.core.sources.blocks_to_input`.

Local files named in metadata or content blocks are read only under the
directories in ``allowed_paths`` (none by default); a document naming any
other file raises :class:`~qvl_integrations.errors.MediaAccessError`. Files
and URLs you pass directly (``embed_image(["cat.png"])``) are always read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ._adapter import CoreSettings, DocumentAccessSettings, convert_each, name_failure
from .core.embedder import QwenVLEmbedder
from .core.inputs import ImageInput, MultimodalInput, VideoInput, is_frame_value, to_input
from .core.reranker import DEFAULT_RERANK_BATCH_SIZE, QwenVLReranker
from .core.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBEDDING_INSTRUCTION,
    DEFAULT_QUERY_INSTRUCTION,
    DEFAULT_RERANK_INSTRUCTION,
)
from .core.sources import MediaAccess, blocks_to_input, is_inline_image
from .errors import ConfigurationError, InputError, MissingDependencyError, UnsupportedInputError

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.embeddings import Embeddings
except ImportError as _exc:  # pragma: no cover - exercised by test_package in a subprocess
    raise MissingDependencyError(
        "qvl_integrations.langchain needs langchain-core: pip install 'qvl-integrations[langchain]'"
    ) from _exc

__all__ = ["QwenVLEmbeddings", "QwenVLRerank", "document_to_input"]

IMAGE_KEYS = ("image", "images", "image_uri", "image_url", "image_path")
VIDEO_KEYS = ("video", "videos", "video_uri", "video_url", "video_path")
BLOCKS_KEY = "content_blocks"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def document_to_input(
    document: Document, access: MediaAccess, *, detect_inline_images: bool = True
) -> MultimodalInput:
    """One multimodal input from a LangChain ``Document`` (see the module docstring).

    Raises:
        InputError: media that cannot be used, or that ``access`` refuses.

    Example:
        >>> doc = Document(page_content="a red square", metadata={"image": "https://x/sq.png"})
        >>> item = document_to_input(doc, MediaAccess())
        >>> item.texts, item.images[0].kind
        (('a red square',), 'url')
    """
    content = document.page_content
    if not isinstance(content, str):
        raise UnsupportedInputError(f"page_content must be a str, got {type(content).__name__}")
    texts: list[str] = []
    images: list[ImageInput] = []
    videos: list[VideoInput] = []
    if detect_inline_images and is_inline_image(content):
        images.append(ImageInput.of(content))
    elif content:
        texts.append(content)
    metadata = document.metadata or {}
    for key in IMAGE_KEYS:
        if metadata.get(key) is not None:
            try:
                images.extend(ImageInput.of(value) for value in _as_list(metadata[key]))
            except InputError as exc:
                raise type(exc)(f"metadata[{key!r}]: {exc.reason}") from exc
    for key in VIDEO_KEYS:
        if metadata.get(key) is not None:
            try:
                # as in the core: one video, a list of frames, or a list of videos
                videos.extend(MultimodalInput(videos=metadata[key]).videos)
            except InputError as exc:
                raise type(exc)(f"metadata[{key!r}]: {exc.reason}") from exc
    blocks = metadata.get(BLOCKS_KEY)
    if blocks is not None:
        if not isinstance(blocks, (list, tuple)):
            raise UnsupportedInputError(
                f"metadata[{BLOCKS_KEY!r}] must be a list of content blocks, "
                f"got {type(blocks).__name__}"
            )
        extra = blocks_to_input(blocks)
        texts.extend(extra.texts)
        images.extend(extra.images)
        videos.extend(extra.videos)
    if not (texts or images or videos):
        texts.append(content)  # an empty document is the empty text, as in the core
    item = MultimodalInput(texts=tuple(texts), images=_distinct(images), videos=tuple(videos))
    return access.check(item)


def _is_frame_list(values: Sequence[Any]) -> bool:
    # Path objects count whatever their suffix: a content block is never one.
    return bool(values) and all(is_frame_value(v) or isinstance(v, os.PathLike) for v in values)


def _distinct(images: list[ImageInput]) -> tuple[ImageInput, ...]:
    """The images of one document, each source once (page_content and metadata may repeat one)."""
    seen: set[Any] = set()
    out = []
    for image in images:
        key = (image.kind, image.source) if isinstance(image.source, (str, bytes, Path)) else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        out.append(image)
    return tuple(out)


def _to_input(value: Any, access: MediaAccess, detect_inline_images: bool) -> MultimodalInput:
    """One input from anything the adapters accept: a Document, content blocks, or core forms.

    A list of frames (every element an image object, path object, or a string
    ending in an image suffix) is one video, as in the core; any other list is
    a list of content blocks (dicts, and strings as text blocks).
    """
    if isinstance(value, Document):
        return document_to_input(value, access, detect_inline_images=detect_inline_images)
    if isinstance(value, (list, tuple)) and not _is_frame_list(value):
        return access.check(blocks_to_input(value))
    if isinstance(value, str):
        return _text_input(value, detect_inline_images)
    return to_input(value)


def _text_input(text: str, detect_inline_images: bool) -> MultimodalInput:
    """A string: text, or an image when it is one given inline (and detection is on)."""
    if detect_inline_images and is_inline_image(text):
        return MultimodalInput(images=(ImageInput.of(text),))
    return MultimodalInput(texts=(text,))


def _label(value: Any) -> str | None:
    doc_id = getattr(value, "id", None) if isinstance(value, Document) else None
    return f"id={doc_id!r}" if doc_id is not None else None


def _convert(
    values: Sequence[Any],
    access: MediaAccess,
    detect_inline_images: bool,
    role: str | None,
) -> list[MultimodalInput]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise ConfigurationError(
            f"expected a list of inputs, got {type(values).__name__}; wrap one input in a list"
        )
    return convert_each(
        values,
        lambda value: _to_input(value, access, detect_inline_images),
        role=role,
        label=_label,
    )


class QwenVLEmbeddings(CoreSettings, DocumentAccessSettings, Embeddings):
    """Qwen3-VL-Embedding as a LangChain ``Embeddings``: text, images, video, any mix.

    One vector space for everything: a text query finds images, an image
    finds texts. Beyond ``embed_documents`` / ``embed_query`` it has
    ``embed_image`` (the method Chroma's ``add_images`` and
    ``similarity_search_by_image`` call), ``embed_video`` and
    ``embed_multimodal`` for ``Document`` objects and content blocks.

    Construct it with ``model_name=`` (hub id or path; ``None`` reads
    ``QVL_EMBEDDING_MODEL``) or with a built core ``embedder=``. Strings
    passed to ``embed_documents`` / ``embed_query`` are text, except inline
    images (data URIs, raw base64 of an image file) when
    ``detect_inline_images`` is on.

    Example:
        >>> from langchain_chroma import Chroma  # doctest: +SKIP
        >>> embeddings = QwenVLEmbeddings(model_name="Qwen/Qwen3-VL-Embedding-2B")
        >>> store = Chroma("photos", embedding_function=embeddings)  # doctest: +SKIP
        >>> store.add_images(["cat.png", "dog.png"])  # doctest: +SKIP
        >>> store.similarity_search("a sleeping cat", k=1)  # doctest: +SKIP
    """

    embedder: QwenVLEmbedder | None = Field(
        default=None, exclude=True, description="A built core embedder to use as is."
    )
    query_instruction: str = Field(
        default=DEFAULT_QUERY_INSTRUCTION, min_length=1, description="Instruction for queries."
    )
    document_instruction: str = Field(
        default=DEFAULT_EMBEDDING_INSTRUCTION,
        min_length=1,
        description="Instruction for documents, images and videos.",
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Matryoshka width: keep the first d components."
    )
    normalize: bool = Field(default=True, description="L2-normalise the vectors.")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, description="Inputs per pass.")
    detect_inline_images: bool = Field(
        default=True, description="Treat data URIs / base64 image strings as images."
    )

    def model_post_init(self, context: Any, /) -> None:
        """Attach (or build, without loading) the core embedder."""
        self.attach_core(self.embedder, QwenVLEmbedder, "embedder")

    @property
    def client(self) -> QwenVLEmbedder:
        """The core embedder for the current settings (loads nothing by itself)."""
        return self.current_core(QwenVLEmbedder)

    # -- core call -------------------------------------------------------------------------------
    def _embed(self, items: Sequence[MultimodalInput], instruction: str) -> list[list[float]]:
        vectors: np.ndarray = self.client.embed(
            items,
            instruction=instruction,
            dim=self.dimensions,
            normalize=self.normalize,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )
        return vectors.tolist()

    def _embed_values(self, values: Sequence[Any], instruction: str) -> list[list[float]]:
        items = _convert(values, self.media_access(), self.detect_inline_images, None)
        try:
            return self._embed(items, instruction)
        except InputError as exc:
            raise name_failure(exc, values, _label) from exc.__cause__

    def _texts(self, texts: Sequence[str]) -> list[MultimodalInput]:
        if isinstance(texts, str):
            raise ConfigurationError("texts must be a list of strings, got one str")

        def make(text: Any) -> MultimodalInput:
            if not isinstance(text, str):
                raise UnsupportedInputError(
                    f"expected a string, got {type(text).__name__}; use embed_multimodal()"
                )
            return _text_input(text, self.detect_inline_images)

        return convert_each(texts, make)

    # -- LangChain Embeddings --------------------------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (with ``document_instruction``): one vector per string."""
        return self._embed(self._texts(texts), self.document_instruction)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (with ``query_instruction``)."""
        return self._embed(self._texts([text]), self.query_instruction)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` in a worker thread; the event loop keeps running."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` in a worker thread; the event loop keeps running."""
        return await asyncio.to_thread(self.embed_query, text)

    # -- images, videos, documents ---------------------------------------------------------------
    def embed_image(self, uris: Sequence[Any]) -> list[list[float]]:
        """Embed images (paths, URLs, data URIs, base64, bytes, PIL): one vector per image.

        Takes a list, as Chroma's ``add_images`` / ``similarity_search_by_image``
        and LanceDB call it. Images use ``document_instruction``, so an image
        searched for by image finds itself first.
        """
        if isinstance(uris, (str, bytes)):
            raise ConfigurationError("uris must be a list; wrap one image in a list")
        items = convert_each(uris, lambda uri: MultimodalInput(images=(ImageInput.of(uri),)))
        return self._embed(items, self.document_instruction)

    def embed_images(self, uris: Sequence[Any]) -> list[list[float]]:
        """Same as :meth:`embed_image`."""
        return self.embed_image(uris)

    def embed_video(self, uris: Sequence[Any]) -> list[list[float]]:
        """Embed videos (file paths, URLs, or lists of frames): one vector per video."""
        if isinstance(uris, (str, bytes)):
            raise ConfigurationError("uris must be a list; wrap one video in a list")
        items = convert_each(uris, lambda uri: MultimodalInput(videos=(VideoInput.of(uri),)))
        return self._embed(items, self.document_instruction)

    def embed_videos(self, uris: Sequence[Any]) -> list[list[float]]:
        """Same as :meth:`embed_video`."""
        return self.embed_video(uris)

    def embed_multimodal(self, inputs: Sequence[Any], *, query: bool = False) -> list[list[float]]:
        """Embed ``Document`` objects, content-block lists, or any core input form.

        Each element is one input: a ``Document`` (text plus the media in its
        metadata, see the module docstring), a list of content blocks (dicts,
        strings as text), a string, an authors'-format dict, a ``PIL.Image``,
        a list whose items are all images or image paths (one video given as
        frames)... ``query=True`` uses
        ``query_instruction`` (e.g. to search by an image or a mix).

        Media named in ``Document``s and content blocks obey ``allowed_paths``
        and ``allow_urls``; core forms (dicts, paths, images) are read as given.
        """
        instruction = self.query_instruction if query else self.document_instruction
        return self._embed_values(inputs, instruction)

    async def aembed_image(self, uris: Sequence[Any]) -> list[list[float]]:
        """:meth:`embed_image` in a worker thread."""
        return await asyncio.to_thread(self.embed_image, uris)

    async def aembed_images(self, uris: Sequence[Any]) -> list[list[float]]:
        """:meth:`embed_images` in a worker thread."""
        return await asyncio.to_thread(self.embed_image, uris)

    async def aembed_video(self, uris: Sequence[Any]) -> list[list[float]]:
        """:meth:`embed_video` in a worker thread."""
        return await asyncio.to_thread(self.embed_video, uris)

    async def aembed_videos(self, uris: Sequence[Any]) -> list[list[float]]:
        """:meth:`embed_videos` in a worker thread."""
        return await asyncio.to_thread(self.embed_video, uris)

    async def aembed_multimodal(
        self, inputs: Sequence[Any], *, query: bool = False
    ) -> list[list[float]]:
        """:meth:`embed_multimodal` in a worker thread."""
        return await asyncio.to_thread(self.embed_multimodal, inputs, query=query)


_UNSET: Any = object()


class QwenVLRerank(CoreSettings, DocumentAccessSettings, BaseDocumentCompressor):
    """Qwen3-VL-Reranker as a LangChain document compressor.

    Scores each document against the query (``P(yes)`` in ``[0, 1]``) and
    returns copies sorted best first, each with ``metadata["relevance_score"]``.
    Documents may hold text, images, video or a mix (see the module
    docstring); the query of :meth:`rerank` may be an image or a mix too.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> reranker = QwenVLRerank(model_name="Qwen/Qwen3-VL-Reranker-2B", top_n=3)
        >>> retriever = ContextualCompressionRetriever(  # doctest: +SKIP
        ...     base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 20})
        ... )
    """

    reranker: QwenVLReranker | None = Field(
        default=None, exclude=True, description="A built core reranker to use as is."
    )
    top_n: int | None = Field(default=3, ge=1, description="Documents kept; None keeps all.")
    score_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop documents scoring below this."
    )
    instruction: str = Field(
        default=DEFAULT_RERANK_INSTRUCTION, min_length=1, description="Task instruction."
    )
    batch_size: int = Field(default=DEFAULT_RERANK_BATCH_SIZE, ge=1, description="Pairs per pass.")
    detect_inline_images: bool = Field(
        default=True, description="Treat data URIs / base64 image strings as images."
    )

    def model_post_init(self, context: Any, /) -> None:
        """Attach (or build, without loading) the core reranker."""
        self.attach_core(self.reranker, QwenVLReranker, "reranker")

    @property
    def client(self) -> QwenVLReranker:
        """The core reranker for the current settings (loads nothing by itself)."""
        return self.current_core(QwenVLReranker)

    def rerank(
        self,
        query: Any,
        documents: Sequence[Any],
        *,
        top_n: int | None = _UNSET,
        score_threshold: float | None = _UNSET,
    ) -> list[dict[str, Any]]:
        """Score documents against a query; best first.

        Args:
            query: Text, an image or a mix: a string, a ``Document``, a list
                of content blocks, or any core input form.
            documents: ``Document`` objects, strings, content-block lists...
            top_n: Keep this many (default: the instance's ``top_n``; ``None``: all).
            score_threshold: Drop scores below it (default: the instance's).

        Returns:
            ``[{"index": i, "relevance_score": p}, ...]`` sorted by score,
            ties in the documents' order.

        Raises:
            InputError: a bad query (``role="query"``) or document (its index and id).
        """
        top_n = self.top_n if top_n is _UNSET else top_n
        threshold = self.score_threshold if score_threshold is _UNSET else score_threshold
        bad_top_n = isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1
        if top_n is not None and bad_top_n:
            raise ConfigurationError(f"top_n must be a positive int or None, got {top_n!r}")
        items = _convert(documents, self.media_access(), self.detect_inline_images, "document")
        if not items:
            return []
        try:
            query_item = _to_input(query, self.media_access(), self.detect_inline_images)
        except InputError as exc:
            raise exc.at(None, "query", _label(query)) from exc.__cause__
        try:
            scores = self.client.score(
                query_item,
                items,
                instruction=self.instruction,
                batch_size=self.batch_size,
                show_progress=self.show_progress,
            )
        except InputError as exc:
            if exc.role == "document":
                raise name_failure(exc, documents, _label) from exc.__cause__
            raise
        order = np.argsort(-scores, kind="stable")
        ranked = [{"index": int(i), "relevance_score": float(scores[i])} for i in order]
        if threshold is not None:
            ranked = [r for r in ranked if r["relevance_score"] >= threshold]
        return ranked if top_n is None else ranked[:top_n]

    async def arerank(
        self,
        query: Any,
        documents: Sequence[Any],
        *,
        top_n: int | None = _UNSET,
        score_threshold: float | None = _UNSET,
    ) -> list[dict[str, Any]]:
        """:meth:`rerank` in a worker thread; the event loop keeps running."""
        return await asyncio.to_thread(
            self.rerank, query, documents, top_n=top_n, score_threshold=score_threshold
        )

    def _compressed(
        self, documents: Sequence[Document], ranked: list[dict[str, Any]]
    ) -> list[Document]:
        out = []
        for result in ranked:
            doc = documents[result["index"]]
            metadata = {**doc.metadata, "relevance_score": result["relevance_score"]}
            out.append(doc.model_copy(update={"metadata": metadata}))
        return out

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank retrieved documents: sorted copies with ``metadata["relevance_score"]``.

        The originals are not changed; ids and metadata are kept; ``top_n``
        and ``score_threshold`` apply.
        """
        return self._compressed(documents, self.rerank(query, documents))

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """:meth:`compress_documents` without blocking the event loop."""
        return self._compressed(documents, await self.arerank(query, documents))
