"""The LlamaIndex adapters against real LlamaIndex components, on the tiny checkpoint."""

from __future__ import annotations

import asyncio
import base64
import pickle
import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import llama_index.core.instrumentation as instrument
import numpy as np
import pytest
from conftest import await_counting_loop_turns, make_image, write_mp4
from llama_index.core import StorageContext, load_index_from_storage
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.ingestion import IngestionCache, IngestionPipeline
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import (
    ImageNode,
    MediaResource,
    MetadataMode,
    Node,
    NodeWithScore,
    QueryBundle,
    TextNode,
)
from pydantic import Field

from qvl_integrations import QwenVLEmbedder, QwenVLReranker
from qvl_integrations.core.settings import DEFAULT_EMBEDDING_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from qvl_integrations.errors import MediaDecodeError, MediaNotFoundError, UnsupportedInputError
from qvl_integrations.llama_index import QwenVLEmbedding, QwenVLRerank

TOL = 1e-5
DOC = DEFAULT_EMBEDDING_INSTRUCTION
QUERY = DEFAULT_QUERY_INSTRUCTION


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("li-images")
    paths = []
    for i, (w, h) in enumerate([(64, 48), (96, 64), (80, 80), (120, 72)]):
        path = folder / f"image_{i}.png"
        make_image(w, h, seed=300 + i).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def embed_model(checkpoint: Path) -> QwenVLEmbedding:
    return QwenVLEmbedding(model_name=str(checkpoint), embed_batch_size=2)


@pytest.fixture(scope="module")
def rerank(checkpoint: Path) -> QwenVLRerank:
    return QwenVLRerank(model_name=str(checkpoint), top_n=None, batch_size=4)


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def close(a: object, b: object, tol: float = TOL) -> bool:
    return bool(np.max(np.abs(np.asarray(a) - np.asarray(b))) <= tol)


class _Collect(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture()
def events() -> Iterator[list[Any]]:
    handler = _Collect(events=[])
    root = instrument.get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler.events
    finally:
        root.event_handlers.remove(handler)


@pytest.fixture()
def core_calls(embed_model: QwenVLEmbedding, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the calls that reach the core embedder (which still runs the model)."""
    sizes: list[int] = []
    core = embed_model.client
    original = core.embed

    def spy(inputs: Any, **kwargs: Any) -> np.ndarray:
        sizes.append(len(inputs))
        return original(inputs, **kwargs)

    monkeypatch.setattr(core, "embed", spy)
    return sizes


# -- QwenVLEmbedding -----------------------------------------------------------------------------
def test_text_query_and_image_vectors_equal_core(
    embed_model: QwenVLEmbedding, embedder: QwenVLEmbedder, images: list[Path]
) -> None:
    assert close(
        embed_model.get_text_embedding("a cat"), embedder.embed(["a cat"], instruction=DOC)[0]
    )
    assert close(
        embed_model.get_query_embedding("a cat"), embedder.embed(["a cat"], instruction=QUERY)[0]
    )
    expected = embedder.embed([{"image": str(images[0])}], instruction=DOC)[0]
    for form in (str(images[0]), BytesIO(images[0].read_bytes()), b64(images[0])):
        assert close(embed_model.get_image_embedding(form), expected)
    as_query = embed_model.get_image_query_embedding(str(images[0]))
    assert close(as_query, embedder.embed([{"image": str(images[0])}], instruction=QUERY)[0])


def test_batches_of_embed_batch_size_reach_the_model(
    embed_model: QwenVLEmbedding, core_calls: list[int], images: list[Path]
) -> None:
    texts = [f"text {i}" for i in range(5)]
    vectors = embed_model.get_text_embedding_batch(texts)
    assert core_calls == [2, 2, 1]
    assert len(vectors) == 5
    core_calls.clear()
    embed_model.get_image_embedding_batch([str(p) for p in images[:3]])
    assert core_calls == [2, 1]
    core_calls.clear()
    asyncio.run(embed_model.aget_text_embedding_batch(texts))
    assert sorted(core_calls) == [1, 2, 2]


def test_settings_are_public_and_pickling_carries_no_weights(
    embed_model: QwenVLEmbedding, checkpoint: Path
) -> None:
    before = embed_model.get_text_embedding("pickle me")
    data = embed_model.to_dict()
    assert data["class_name"] == "QwenVLEmbedding"
    assert data["model_name"] == str(checkpoint)
    for key in (
        "query_instruction",
        "text_instruction",
        "dimensions",
        "embed_batch_size",
        "device",
        "dtype",
    ):
        assert key in data
    assert "embedder" not in data
    blob = pickle.dumps(embed_model)
    assert len(blob) < 20_000
    clone = pickle.loads(blob)
    assert not clone.client.is_loaded
    assert clone.to_dict() == data
    assert close(clone.get_text_embedding("pickle me"), before)
    assert clone.client.loaded is embed_model.client.loaded


def test_construction_is_lazy_and_shared(checkpoint: Path, embedder: QwenVLEmbedder) -> None:
    model = QwenVLEmbedding(model_name=str(checkpoint), dimensions=8)
    assert not model.client.is_loaded
    vector = model.get_query_embedding("x")
    assert len(vector) == 8
    assert model.client.loaded is embedder.loaded
    built = QwenVLEmbedding(embedder=embedder)
    assert built.client is embedder and built.model_name == str(checkpoint)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        QwenVLEmbedding(model_name=str(checkpoint), no_such_option=1)  # type: ignore[call-arg]


async def test_async_paths_match_and_leave_the_loop_free(
    embed_model: QwenVLEmbedding, images: list[Path]
) -> None:
    texts = [f"passage {i} " * (i + 1) for i in range(6)]
    paths = [str(p) for p in images]
    expected_texts = embed_model.get_text_embedding_batch(texts)
    expected_images = embed_model.get_image_embedding_batch(paths)
    (got_texts, got_images, query), ticks = await await_counting_loop_turns(
        asyncio.gather(
            embed_model.aget_text_embedding_batch(texts),
            embed_model.aget_image_embedding_batch(paths),
            embed_model.aget_query_embedding("q"),
        )
    )
    assert ticks > 1
    assert close(got_texts, expected_texts) and close(got_images, expected_images)
    assert close(query, embed_model.get_query_embedding("q"))
    assert close(await embed_model.aget_image_embedding(paths[0]), expected_images[0])
    assert close(
        await embed_model.aget_image_query_embedding(paths[0]),
        embed_model.get_image_query_embedding(paths[0]),
    )


def test_video_and_multimodal_methods(
    embed_model: QwenVLEmbedding,
    embedder: QwenVLEmbedder,
    frame_files: list[Path],
    tmp_path: Path,
    images: list[Path],
) -> None:
    frames = [str(p) for p in frame_files]
    clip = str(write_mp4(tmp_path / "clip.mp4"))
    expected = embedder.embed([{"video": frames}, {"video": clip}], instruction=DOC)
    assert close(embed_model.get_video_embeddings([frames, clip]), expected)
    assert close(embed_model.get_video_embedding(clip), expected[1])
    assert close(asyncio.run(embed_model.aget_video_embedding(frames)), expected[0])
    assert close(asyncio.run(embed_model.aget_video_embeddings([clip])), expected[1:])
    mix = {"text": "a caption", "image": str(images[1])}
    assert close(
        embed_model.get_multimodal_embedding(mix), embedder.embed([mix], instruction=DOC)[0]
    )
    assert close(
        embed_model.get_multimodal_embedding(mix, query=True),
        embedder.embed([mix], instruction=QUERY)[0],
    )
    assert close(
        asyncio.run(embed_model.aget_multimodal_embedding(mix)),
        embedder.embed([mix], instruction=DOC)[0],
    )
    node = Node(
        text_resource=MediaResource(text="a caption"), image_resource=MediaResource(path=images[1])
    )
    assert close(
        embed_model.get_multimodal_embeddings([node]), embedder.embed([mix], instruction=DOC)
    )


def test_image_calls_emit_instrumentation_events(
    embed_model: QwenVLEmbedding, images: list[Path], events: list[Any]
) -> None:
    embed_model.get_image_embedding_batch([str(p) for p in images[:3]])
    starts = [e for e in events if isinstance(e, EmbeddingStartEvent)]
    ends = [e for e in events if isinstance(e, EmbeddingEndEvent)]
    assert len(starts) == len(ends) == 2  # one pair per batch of embed_batch_size=2
    assert starts[0].model_dict["class_name"] == "QwenVLEmbedding"
    assert [c for e in ends for c in e.chunks] == [str(p) for p in images[:3]]
    assert len(ends[0].embeddings) == 2
    events.clear()
    embed_model.get_image_embedding(BytesIO(images[0].read_bytes()))
    ends = [e for e in events if isinstance(e, EmbeddingEndEvent)]
    assert len(ends) == 1 and ends[0].chunks[0].startswith("<image, ")


def test_image_calls_send_one_callback_event_each(checkpoint: Path, images: list[Path]) -> None:
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler

    debug = LlamaDebugHandler()
    model = QwenVLEmbedding(
        model_name=str(checkpoint), embed_batch_size=2, callback_manager=CallbackManager([debug])
    )
    model.get_image_embedding(str(images[0]))
    assert len(debug.get_event_pairs(CBEventType.EMBEDDING)) == 1
    debug.flush_event_logs()
    model.get_image_embedding_batch([str(p) for p in images[:3]])
    assert len(debug.get_event_pairs(CBEventType.EMBEDDING)) == 2  # one per chunk
    debug.flush_event_logs()
    model.get_video_embeddings([[str(images[0]), str(images[0])]])
    assert len(debug.get_event_pairs(CBEventType.EMBEDDING)) == 1


def test_ingestion_pipeline_embeds_nodes_by_their_media(
    embed_model: QwenVLEmbedding, embedder: QwenVLEmbedder, images: list[Path], tmp_path: Path
) -> None:
    clip = write_mp4(tmp_path / "clip.mp4")
    nodes = [
        ImageNode(image_path=str(images[0]), text="ignored caption", metadata={"n": 0}),
        ImageNode(image=b64(images[1]), metadata={"n": 1}),
        Node(image_resource=MediaResource(path=images[2]), metadata={"n": 2}),
        Node(
            image_resource=MediaResource(data=images[3].read_bytes()),
            text_resource=MediaResource(text="page four"),
            metadata={"n": 3},
        ),
        Node(video_resource=MediaResource(path=clip), metadata={"n": 4}),
        TextNode(text="just text", metadata={"n": 5}),
    ]
    out = IngestionPipeline(transformations=[embed_model]).run(nodes=nodes)
    assert len(out) == len(nodes)
    text_of_last = nodes[5].get_content(metadata_mode=MetadataMode.EMBED)
    expected = embedder.embed(
        [
            {"image": str(images[0])},
            {"image": str(images[1])},
            {"image": str(images[2])},
            {
                "text": nodes[3].get_content(metadata_mode=MetadataMode.EMBED),
                "image": str(images[3]),
            },
            {"video": str(clip)},
            text_of_last,
        ],
        instruction=DOC,
    )
    assert close([n.embedding for n in out], expected)
    # async transformation path
    fresh = [n.model_copy() for n in nodes]
    for n in fresh:
        n.embedding = None
    got = asyncio.run(IngestionPipeline(transformations=[embed_model]).arun(nodes=fresh))
    assert close([n.embedding for n in got], expected)


def test_ingestion_cache_key_follows_the_settings(checkpoint: Path) -> None:
    cache = IngestionCache()
    nodes = [TextNode(text="cached text", id_="n1")]

    def run(**settings: Any) -> list[float]:
        model = QwenVLEmbedding(model_name=str(checkpoint), **settings)
        pipeline = IngestionPipeline(transformations=[model], cache=cache)
        result = pipeline.run(nodes=[n.model_copy() for n in nodes])
        assert result[0].embedding is not None
        return result[0].embedding

    first = run(dimensions=16)
    entries = len(cache.cache.get_all(collection=cache.collection))
    assert entries == 1
    assert run(dimensions=16) == first  # a cache hit: no new entry
    assert len(cache.cache.get_all(collection=cache.collection)) == 1
    assert len(run(dimensions=8)) == 8  # new dimensions: new key, new vectors
    other = run(dimensions=16, text_instruction="Represent the passage for retrieval.")
    assert not close(other, first, 1e-4)  # new instruction: not the cached vector
    assert len(cache.cache.get_all(collection=cache.collection)) == 3


def _index_nodes(images: list[Path]) -> list[Any]:
    return [ImageNode(image_path=str(p), metadata={"name": p.name}) for p in images] + [
        TextNode(text="the sea is blue", metadata={"name": "sea"}),
        TextNode(text="grass is green", metadata={"name": "grass"}),
    ]


def _no_clip() -> bool:
    return not any(
        "clip" in m and m.startswith(("llama_index", "clip", "open_clip")) for m in sys.modules
    )


def test_multimodal_index_default_stores(
    embed_model: QwenVLEmbedding, images: list[Path], tmp_path: Path
) -> None:
    index = MultiModalVectorStoreIndex(
        _index_nodes(images), embed_model=embed_model, image_embed_model=embed_model
    )
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    by_text = retriever.text_to_image_retrieve("a bright gradient")
    assert len(by_text) == 2 and all(isinstance(n.node, ImageNode) for n in by_text)
    for target in images[1:3]:
        hits = retriever.image_to_image_retrieve(str(target))
        assert hits[0].node.metadata["name"] == target.name
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    mixed = retriever.retrieve("the colour of the sea")
    assert {type(n.node).__name__ for n in mixed} == {"TextNode", "ImageNode"}
    index.storage_context.persist(persist_dir=str(tmp_path / "index"))
    reloaded = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(tmp_path / "index")),
        embed_model=embed_model,
        image_embed_model=embed_model,
    )
    hits = reloaded.as_retriever(image_similarity_top_k=1).image_to_image_retrieve(str(images[3]))
    assert hits[0].node.metadata["name"] == images[3].name
    assert _no_clip()


def test_multimodal_index_over_qdrant_local(
    embed_model: QwenVLEmbedding, images: list[Path], tmp_path: Path
) -> None:
    import qdrant_client
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    def stores(client: Any) -> StorageContext:
        return StorageContext.from_defaults(
            vector_store=QdrantVectorStore("text", client=client, index_doc_id=False),
            image_store=QdrantVectorStore("image", client=client, index_doc_id=False),
        )

    client = qdrant_client.QdrantClient(path=str(tmp_path / "qdrant"))
    context = stores(client)
    index = MultiModalVectorStoreIndex(
        _index_nodes(images),
        storage_context=context,
        embed_model=embed_model,
        image_embed_model=embed_model,
    )
    assert sorted(c.name for c in client.get_collections().collections) == ["image", "text"]
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=3)
    assert len(retriever.text_to_image_retrieve("a picture")) == 3
    assert (
        retriever.image_to_image_retrieve(str(images[0]))[0].node.metadata["name"] == images[0].name
    )
    context.persist(persist_dir=str(tmp_path / "meta"))
    client.close()

    client = qdrant_client.QdrantClient(path=str(tmp_path / "qdrant"))
    reloaded = load_index_from_storage(
        StorageContext.from_defaults(
            persist_dir=str(tmp_path / "meta"),
            vector_store=QdrantVectorStore("text", client=client, index_doc_id=False),
            image_store=QdrantVectorStore("image", client=client, index_doc_id=False),
        ),
        embed_model=embed_model,
        image_embed_model=embed_model,
    )
    hits = reloaded.as_retriever(image_similarity_top_k=1).image_to_image_retrieve(str(images[2]))
    assert hits[0].node.metadata["name"] == images[2].name
    client.close()
    assert _no_clip()


# -- QwenVLRerank --------------------------------------------------------------------------------
def _mixed_nodes(images: list[Path]) -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text="a red house", id_="text"), score=0.9),
        NodeWithScore(node=ImageNode(image=b64(images[0]), id_="b64"), score=0.8),
        NodeWithScore(node=ImageNode(image_path=str(images[1]), id_="path"), score=0.7),
        NodeWithScore(
            node=ImageNode(image_path=str(images[2]), text="a caption", id_="captioned"), score=0.6
        ),
        NodeWithScore(
            node=Node(image_resource=MediaResource(path=images[3]), id_="node"), score=0.5
        ),
    ]


def _expected(images: list[Path]) -> list[Any]:
    return [
        "a red house",
        {"image": str(images[0])},
        {"image": str(images[1])},
        {"text": "a caption", "image": str(images[2])},
        {"image": str(images[3])},
    ]


def test_rerank_mixed_nodes_text_and_image_queries(
    rerank: QwenVLRerank, reranker: QwenVLReranker, images: list[Path], events: list[Any]
) -> None:
    nodes = _mixed_nodes(images)
    snapshot = [(n.node.model_dump(), n.score) for n in nodes]
    out = rerank.postprocess_nodes(nodes, query_str="a house")
    core = reranker.score("a house", _expected(images))
    assert len(out) == len(nodes)
    assert [n.node.node_id for n in out] == [
        nodes[i].node.node_id for i in np.argsort(-core, kind="stable")
    ]
    assert close([n.score for n in out], np.sort(core)[::-1])
    assert [(n.node.model_dump(), n.score) for n in nodes] == snapshot  # untouched
    assert all(o is not i for o in out for i in nodes)
    starts = [e for e in events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 1
    assert starts[0].query.query_str == "a house" and len(starts[0].nodes) == 5
    assert [n.node.node_id for n in ends[0].nodes] == [n.node.node_id for n in out]

    image_query = QueryBundle(query_str="", image_path=str(images[1]))
    got = rerank.postprocess_nodes(nodes, query_bundle=image_query)
    core_image = reranker.score({"image": str(images[1])}, _expected(images))
    assert close([n.score for n in got], np.sort(core_image)[::-1])
    both = QueryBundle(query_str="which one?", image_path=str(images[1]))
    core_both = reranker.score({"text": "which one?", "image": str(images[1])}, _expected(images))
    assert close(
        [n.score for n in rerank.postprocess_nodes(nodes, query_bundle=both)],
        np.sort(core_both)[::-1],
    )


def test_rerank_top_n_and_retrieval_score(
    checkpoint: Path, images: list[Path], rerank: QwenVLRerank
) -> None:
    nodes = _mixed_nodes(images)
    full = rerank.postprocess_nodes(nodes, query_str="q")
    top = QwenVLRerank(model_name=str(checkpoint), top_n=2).postprocess_nodes(nodes, query_str="q")
    assert [n.node.node_id for n in top] == [n.node.node_id for n in full[:2]]
    keep = QwenVLRerank(model_name=str(checkpoint), top_n=None, keep_retrieval_score=True)
    kept = keep.postprocess_nodes(nodes, query_str="q")
    original = {n.node.node_id: n.score for n in nodes}
    for n in kept:
        assert n.node.metadata["retrieval_score"] == original[n.node.node_id]
    assert all("retrieval_score" not in n.node.metadata for n in nodes)
    assert rerank.postprocess_nodes([], query_str="q") == []
    with pytest.raises(ValueError, match="query"):
        rerank.postprocess_nodes(nodes)


async def test_rerank_async_matches_sync(
    rerank: QwenVLRerank, images: list[Path], events: list[Any]
) -> None:
    nodes = _mixed_nodes(images)
    sync = rerank.postprocess_nodes(nodes, query_str="a house")
    events.clear()
    got = await rerank.apostprocess_nodes(nodes, query_str="a house")
    assert [n.node.node_id for n in got] == [n.node.node_id for n in sync]
    assert close([n.score for n in got], [n.score for n in sync])
    assert sum(isinstance(e, ReRankEndEvent) for e in events) == 1
    many = await asyncio.gather(
        *(rerank.apostprocess_nodes(nodes, query_str="a house") for _ in range(3))
    )
    for result in many:
        assert close([n.score for n in result], [n.score for n in sync])


# -- bad nodes -----------------------------------------------------------------------------------
def test_bad_nodes_name_the_node(
    embed_model: QwenVLEmbedding, rerank: QwenVLRerank, images: list[Path], tmp_path: Path
) -> None:
    good = NodeWithScore(node=TextNode(text="fine"), score=1.0)
    missing = ImageNode(image_path=str(tmp_path / "missing.png"), id_="gone")
    with pytest.raises(MediaNotFoundError, match=r"document 1 \(id='gone'\)") as info:
        rerank.postprocess_nodes([good, NodeWithScore(node=missing)], query_str="q")
    assert info.value.index == 1
    bad = ImageNode(image="@@@ not base64 at all, clearly not an image @@@ " * 2, id_="bad")
    with pytest.raises(MediaDecodeError, match=r"document 0 \(id='bad'\)"):
        rerank.postprocess_nodes([NodeWithScore(node=bad), good], query_str="q")
    with pytest.raises(MediaNotFoundError, match=r"input 1 \(id='gone'\)"):
        embed_model([TextNode(text="ok"), missing])
    with pytest.raises(MediaDecodeError, match="input 0"):
        embed_model([bad])
    with pytest.raises(MediaNotFoundError, match="input 2"):
        embed_model.get_image_embedding_batch(
            [str(images[0]), str(images[1]), str(tmp_path / "x.png")]
        )
    with pytest.raises(UnsupportedInputError, match="no image"):
        embed_model([ImageNode(id_="empty")])
    with pytest.raises(MediaNotFoundError, match="query"):
        rerank.postprocess_nodes(
            [good], query_bundle=QueryBundle("", image_path=str(tmp_path / "q.png"))
        )


# -- settings that describe the running model ----------------------------------------------------
def test_settings_round_trip_and_describe_the_running_core(
    embed_model: QwenVLEmbedding, embedder: QwenVLEmbedder, checkpoint: Path, images: list[Path]
) -> None:
    from llama_index.core.ingestion.pipeline import get_transformation_hash

    rebuilt = QwenVLEmbedding.from_dict(embed_model.to_dict())
    assert rebuilt.to_dict() == embed_model.to_dict()
    assert close(
        rebuilt.get_text_embedding("round trip"), embed_model.get_text_embedding("round trip")
    )
    # a given core's settings become the public fields (and so the cache key)
    small_core = QwenVLEmbedder(checkpoint, max_pixels=64 * 64)
    given = QwenVLEmbedding(embedder=small_core)
    assert given.to_dict()["max_pixels"] == 64 * 64
    assert given.to_dict()["dtype"] == "float32"
    plain = QwenVLEmbedding(embedder=embedder)
    nodes = [TextNode(text="same node")]
    assert get_transformation_hash(nodes, given) != get_transformation_hash(nodes, plain)
    again = QwenVLEmbedding.from_dict(given.to_dict())
    assert again.client.vision.max_pixels == 64 * 64
    assert close(
        again.get_image_embedding(str(images[1])), given.get_image_embedding(str(images[1]))
    )
    # a copy that replaces the given core runs with the new one
    swapped = given.model_copy(update={"embedder": embedder})
    assert swapped.to_dict()["max_pixels"] == embedder.vision.max_pixels  # before any call
    assert swapped.client is embedder
    assert get_transformation_hash(nodes, swapped) == get_transformation_hash(nodes, plain)
    # a copy with new settings runs with them
    copy = embed_model.model_copy(update={"max_pixels": 64 * 64})
    assert copy.client.vision.max_pixels == 64 * 64
    assert close(
        copy.get_image_embedding(str(images[1])), given.get_image_embedding(str(images[1]))
    )
    assert embed_model.client.vision.max_pixels != 64 * 64


def test_forward_passes_hold_up_to_embed_batch_size_inputs(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = QwenVLEmbedding(
        model_name=str(checkpoint), embed_batch_size=4, max_batch_tokens=100_000
    )
    core = model.client
    sizes: list[int] = []
    original = core._forward

    def spy(batch: Any) -> Any:
        sizes.append(batch.tensors["input_ids"].shape[0])
        return original(batch)

    monkeypatch.setattr(core, "_forward", spy)
    model.get_text_embedding_batch([f"same length text {i}" for i in range(8)])
    assert sizes == [4, 4]


def test_an_image_query_finds_texts_through_a_query_bundle(
    embed_model: QwenVLEmbedding, images: list[Path]
) -> None:
    index = MultiModalVectorStoreIndex(
        _index_nodes(images), embed_model=embed_model, image_embed_model=embed_model
    )
    query = embed_model.get_image_query_embedding(str(images[0]))
    bundle = QueryBundle(query_str="", image_path=str(images[0]), embedding=query)
    hits = index.as_retriever(similarity_top_k=2).text_retrieve(bundle)
    texts = {"sea": "the sea is blue", "grass": "grass is green"}
    assert len(hits) == 2
    for hit in hits:
        text = hit.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert text.endswith(texts[hit.node.metadata["name"]])
        expected = float(np.dot(query, embed_model.get_text_embedding(text)))
        assert hit.score == pytest.approx(expected, abs=1e-5)


async def test_async_rerank_sends_callbacks_and_leaves_the_loop_free(
    checkpoint: Path, images: list[Path]
) -> None:
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler

    debug = LlamaDebugHandler()
    model = QwenVLRerank(model_name=str(checkpoint), callback_manager=CallbackManager([debug]))
    nodes = _mixed_nodes(images)
    model.postprocess_nodes(nodes, query_str="q")
    assert len(debug.get_event_pairs(CBEventType.RERANKING)) == 1
    debug.flush_event_logs()
    _, ticks = await await_counting_loop_turns(model.apostprocess_nodes(nodes, query_str="q"))
    assert ticks > 1
    assert len(debug.get_event_pairs(CBEventType.RERANKING)) == 1
    with pytest.raises(ValueError, match="top_n"):
        model.model_copy(update={"top_n": 0}).postprocess_nodes(nodes, query_str="q")


def test_text_nodes_take_llama_index_text_path_with_its_cache(
    checkpoint: Path, images: list[Path], events: list[Any]
) -> None:
    from llama_index.core.storage.kvstore import SimpleKVStore

    store = SimpleKVStore()
    model = QwenVLEmbedding(model_name=str(checkpoint), embeddings_cache=store, embed_batch_size=2)
    nodes = [
        TextNode(text="first text"),
        ImageNode(image_path=str(images[0])),
        TextNode(text="second text"),
    ]
    model(nodes)
    for node in (nodes[0], nodes[2]):
        cached = store.get(
            node.get_content(metadata_mode=MetadataMode.EMBED), collection="embeddings"
        )
        assert cached is not None and close(next(iter(cached.values())), node.embedding)
    assert close(nodes[1].embedding, model.get_image_embedding(str(images[0])))
    assert sum(isinstance(e, EmbeddingEndEvent) for e in events) >= 2  # text batch + media
