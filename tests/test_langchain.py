"""The LangChain adapters against real LangChain components, on the tiny checkpoint."""

from __future__ import annotations

import asyncio
import base64
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import await_counting_loop_turns, make_image
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

from qvl_integrations import QwenVLEmbedder, QwenVLReranker
from qvl_integrations.core.settings import DEFAULT_EMBEDDING_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION
from qvl_integrations.errors import (
    ConfigurationError,
    MediaAccessError,
    MediaDecodeError,
    MediaNotFoundError,
    ModelLoadError,
    UnsupportedInputError,
)
from qvl_integrations.langchain import QwenVLEmbeddings, QwenVLRerank

TOL = 1e-5
DOC = DEFAULT_EMBEDDING_INSTRUCTION


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("lc-images")
    paths = []
    for i, (w, h) in enumerate([(64, 48), (96, 64), (80, 80), (120, 72), (50, 90)]):
        path = folder / f"image_{i}.png"
        make_image(w, h, seed=200 + i).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def embeddings(checkpoint: Path, images: list[Path]) -> QwenVLEmbeddings:
    return QwenVLEmbeddings(
        model_name=str(checkpoint), batch_size=4, allowed_paths=[str(images[0].parent)]
    )


@pytest.fixture(scope="module")
def rerank(checkpoint: Path, images: list[Path]) -> QwenVLRerank:
    return QwenVLRerank(
        model_name=str(checkpoint),
        batch_size=4,
        top_n=None,
        allowed_paths=[str(images[0].parent)],
    )


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def close(a: object, b: object, tol: float = TOL) -> bool:
    return bool(np.max(np.abs(np.asarray(a) - np.asarray(b))) <= tol)


# -- QwenVLEmbeddings ----------------------------------------------------------------------------
def test_embeddings_equal_core_vectors(
    embeddings: QwenVLEmbeddings, embedder: QwenVLEmbedder, images: list[Path]
) -> None:
    texts = ["a small red house", "tiny", "the quick brown fox jumps over the lazy dog"]
    docs = embeddings.embed_documents(texts)
    assert isinstance(docs, list) and all(isinstance(x, float) for x in docs[0])
    assert close(docs, embedder.embed(texts, instruction=DEFAULT_EMBEDDING_INSTRUCTION))
    query = embeddings.embed_query("red house")
    assert close(query, embedder.embed(["red house"], instruction=DEFAULT_QUERY_INSTRUCTION)[0])
    # the query instruction really differs from the document one
    assert not close(query, embeddings.embed_documents(["red house"])[0], 1e-3)
    pictures = embeddings.embed_image([str(p) for p in images[:2]])
    assert close(pictures, embedder.embed([{"image": str(p)} for p in images[:2]]))
    assert close(embeddings.embed_images([str(images[0])]), pictures[:1])


def test_dimensions_truncate_and_renormalise(checkpoint: Path) -> None:
    small = QwenVLEmbeddings(model_name=str(checkpoint), dimensions=16)
    full = QwenVLEmbeddings(model_name=str(checkpoint))
    vector = np.asarray(small.embed_query("matryoshka"))
    reference = np.asarray(full.embed_query("matryoshka"))[:16]
    assert vector.shape == (16,)
    assert close(vector, reference / np.linalg.norm(reference))
    with pytest.raises(ConfigurationError, match="dim must be"):
        QwenVLEmbeddings(model_name=str(checkpoint), dimensions=10_000).embed_query("x")
    with pytest.raises(ValidationError):
        QwenVLEmbeddings(model_name=str(checkpoint), dimensions=0)


def test_construction_is_lazy_and_models_are_shared(
    checkpoint: Path, embedder: QwenVLEmbedder
) -> None:
    missing = QwenVLEmbeddings(model_name="/no/such/checkpoint")
    assert not missing.client.is_loaded
    with pytest.raises(ModelLoadError):
        missing.embed_query("x")
    first = QwenVLEmbeddings(model_name=str(checkpoint))
    second = QwenVLEmbeddings(model_name=str(checkpoint), dimensions=8)
    assert not first.client.is_loaded
    first.embed_query("load")
    second.embed_query("load")
    assert first.client.loaded is second.client.loaded is embedder.loaded
    a = QwenVLRerank(model_name=str(checkpoint))
    b = QwenVLRerank(model_name=str(checkpoint), top_n=1)
    assert not a.client.is_loaded
    a.rerank("q", ["d"])
    b.rerank("q", ["d"])
    assert a.client.loaded is b.client.loaded


def test_built_core_and_option_validation(checkpoint: Path, embedder: QwenVLEmbedder) -> None:
    adapter = QwenVLEmbeddings(embedder=embedder)
    assert adapter.client is embedder
    assert adapter.model_name == str(checkpoint)
    # pydantic reports construction errors as ValidationError (a ValueError)
    # the given core's settings become the fields; agreeing values are fine, others are not
    assert adapter.dtype == "float32" and adapter.max_pixels == embedder.vision.max_pixels
    assert QwenVLEmbeddings(embedder=embedder, device="cpu").client is embedder
    with pytest.raises(ValidationError, match="dtype cannot differ from the given embedder"):
        QwenVLEmbeddings(embedder=embedder, dtype="bfloat16")
    with pytest.raises(ValidationError, match="QwenVLEmbedder"):
        QwenVLEmbeddings(embedder="not a model")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no_such_option"):
        QwenVLEmbeddings(model_name=str(checkpoint), no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        QwenVLRerank(model_name=str(checkpoint), top_n=0)
    with pytest.raises(ValidationError):
        QwenVLRerank(model_name=str(checkpoint), score_threshold=1.5)
    with pytest.raises(ConfigurationError, match="wrap one"):
        adapter.embed_image(str(checkpoint))  # type: ignore[arg-type]


async def test_async_calls_match_and_do_not_block_the_loop(embeddings: QwenVLEmbeddings) -> None:
    texts = [f"document number {i} " * (i + 1) for i in range(12)]
    expected = embeddings.embed_documents(texts)
    got, ticks = await await_counting_loop_turns(embeddings.aembed_documents(texts))
    assert close(got, expected)
    assert ticks > 1  # the loop kept running while the model worked
    # many coroutines at once: every one gets its own, correct vector
    queries = [f"query {i}" for i in range(8)]
    results = await asyncio.gather(*(embeddings.aembed_query(q) for q in queries))
    for query, vector in zip(queries, results, strict=True):
        assert close(vector, embeddings.embed_query(query))


async def test_async_media_methods(embeddings: QwenVLEmbeddings, images: list[Path]) -> None:
    uris = [str(images[1])]
    assert close(await embeddings.aembed_image(uris), embeddings.embed_image(uris))
    assert close(await embeddings.aembed_images(uris), embeddings.embed_image(uris))
    docs = [Document("", metadata={"image": uris[0]})]
    assert close(await embeddings.aembed_multimodal(docs), embeddings.embed_image(uris))


def test_inline_images_in_text_calls(embeddings: QwenVLEmbeddings, images: list[Path]) -> None:
    by_path = embeddings.embed_image([str(images[2])])[0]
    data_uri = "data:image/png;base64," + b64(images[2])
    assert close(embeddings.embed_documents([b64(images[2]), data_uri]), [by_path, by_path])
    literal = QwenVLEmbeddings(
        model_name=embeddings.model_name, detect_inline_images=False, batch_size=4
    )
    assert not close(literal.embed_documents([b64(images[2])])[0], by_path, 1e-3)


def test_videos(
    embeddings: QwenVLEmbeddings, embedder: QwenVLEmbedder, frame_files: list[Path]
) -> None:
    frames = [str(p) for p in frame_files]
    vectors = embeddings.embed_video([frames])
    assert close(vectors, embedder.embed([{"video": frames}]))
    assert close(embeddings.embed_videos([frames]), vectors)
    assert len(vectors) == 1


def test_embed_multimodal_reads_documents_and_blocks(
    embeddings: QwenVLEmbeddings, embedder: QwenVLEmbedder, images: list[Path]
) -> None:
    path = str(images[3])
    inputs = [
        Document("a caption", metadata={"image": path}),
        Document("", metadata={"images": [path, str(images[4])]}),
        Document("only words", metadata={"source": "web"}),
        [{"type": "text", "text": "a caption"}, {"type": "image", "path": path}],
        [{"type": "image", "base64": b64(images[3]), "mime_type": "image/png"}],
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(images[3])}}],
        Document("", metadata={"content_blocks": [{"type": "image", "url": "file://" + path}]}),
        "plain text",
    ]
    got = embeddings.embed_multimodal(inputs)
    expected = embedder.embed(
        [
            {"text": "a caption", "image": path},
            {"image": [path, str(images[4])]},
            "only words",
            {"text": "a caption", "image": path},
            {"image": path},
            {"image": path},
            {"image": path},
            "plain text",
        ],
        instruction=DEFAULT_EMBEDDING_INSTRUCTION,
    )
    assert len(got) == len(inputs)
    assert close(got, expected)
    as_query = embeddings.embed_multimodal([Document("", metadata={"image": path})], query=True)
    assert close(as_query, embedder.embed([{"image": path}], instruction=DEFAULT_QUERY_INSTRUCTION))


def test_in_memory_vector_store_end_to_end(embeddings: QwenVLEmbeddings) -> None:
    texts = ["apples are red", "the sea is blue", "grass is green", "snow is white"]
    store = InMemoryVectorStore.from_texts(
        texts, embeddings, metadatas=[{"i": i} for i in range(4)]
    )
    hits = store.similarity_search_with_score("what colour is the sea?", k=3)
    assert len(hits) == 3
    query = np.asarray(embeddings.embed_query("what colour is the sea?"))
    vectors = np.asarray(embeddings.embed_documents(texts))
    cosines = vectors @ query
    for doc, score in hits:
        assert abs(score - cosines[doc.metadata["i"]]) < 1e-4
    assert [d.metadata["i"] for d, _ in hits] == list(np.argsort(-cosines)[:3])
    exact = store.similarity_search_by_vector(
        embeddings.embed_documents(["grass is green"])[0], k=1
    )
    assert exact[0].page_content == "grass is green"


# -- Chroma, compression retriever, LCEL ---------------------------------------------------------
@pytest.fixture(scope="module")
def chroma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chroma")


@pytest.fixture(scope="module")
def chroma_store(embeddings: QwenVLEmbeddings, images: list[Path], chroma_dir: Path):  # type: ignore[no-untyped-def]
    from langchain_chroma import Chroma

    store = Chroma(
        collection_name="qvl-images",
        embedding_function=embeddings,
        persist_directory=str(chroma_dir),
    )
    ids = store.add_images([str(p) for p in images], metadatas=[{"name": p.name} for p in images])
    assert len(ids) == len(images)
    return store


def test_chroma_image_search(chroma_store, images: list[Path]) -> None:  # type: ignore[no-untyped-def]
    for target in (images[1], images[3]):
        hits = chroma_store.similarity_search_by_image(str(target), k=3)
        assert len(hits) == 3
        assert hits[0].metadata["name"] == target.name
        assert hits[0].page_content == b64(target)
    text_hits = chroma_store.similarity_search("a colourful gradient picture", k=4)
    assert len(text_hits) == 4
    assert {d.metadata["name"] for d in text_hits} <= {p.name for p in images}


def test_chroma_reloads_from_disk(  # type: ignore[no-untyped-def]
    chroma_store, embeddings: QwenVLEmbeddings, images: list[Path], chroma_dir: Path, tmp_path: Path
) -> None:
    from langchain_chroma import Chroma

    copy = tmp_path / "copy"
    shutil.copytree(chroma_dir, copy)
    reopened = Chroma(
        collection_name="qvl-images", embedding_function=embeddings, persist_directory=str(copy)
    )
    hits = reopened.similarity_search_by_image(str(images[2]), k=1)
    assert hits[0].metadata["name"] == images[2].name


def _expected_scores(
    reranker: QwenVLReranker, query: object, docs: list[Document]
) -> dict[str, float]:
    scores = reranker.score(query, [{"image": d.page_content} for d in docs])
    return {d.metadata["name"]: float(s) for d, s in zip(docs, scores, strict=True)}


async def test_compression_retriever_over_chroma(  # type: ignore[no-untyped-def]
    chroma_store, rerank: QwenVLRerank, reranker: QwenVLReranker
) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    base = chroma_store.as_retriever(search_kwargs={"k": 4})
    compressor = rerank.model_copy(update={"top_n": 3})
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    query = "a picture with a bright gradient"
    candidates = base.invoke(query)
    expected = _expected_scores(reranker, query, candidates)
    for docs in (retriever.invoke(query), await retriever.ainvoke(query)):
        assert len(docs) == 3
        scores = [d.metadata["relevance_score"] for d in docs]
        assert scores == sorted(scores, reverse=True)
        for doc in docs:
            assert abs(doc.metadata["relevance_score"] - expected[doc.metadata["name"]]) < 1e-5
            assert doc.id is not None
    best = max(expected.values())
    assert abs(scores[0] - best) < 1e-5


def test_lcel_chain_end_to_end(chroma_store, rerank: QwenVLRerank) -> None:  # type: ignore[no-untyped-def]
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    retriever = ContextualCompressionRetriever(
        base_compressor=rerank.model_copy(update={"top_n": 2}),
        base_retriever=chroma_store.as_retriever(search_kwargs={"k": 3}),
    )

    def describe(docs: list[Document]) -> str:
        return "\n".join(f"{d.metadata['name']}: {d.metadata['relevance_score']:.4f}" for d in docs)

    chain = {"context": retriever | RunnableLambda(describe), "question": RunnablePassthrough()} | (
        RunnableLambda(lambda x: f"Q: {x['question']}\n{x['context']}")
    )
    out = chain.invoke("which picture is greenest?")
    lines = out.splitlines()
    assert lines[0] == "Q: which picture is greenest?"
    assert len(lines) == 3 and all(line.startswith("image_") for line in lines[1:])


# -- QwenVLRerank --------------------------------------------------------------------------------
def test_rerank_mixed_documents_equal_core_scores(
    rerank: QwenVLRerank, reranker: QwenVLReranker, images: list[Path]
) -> None:
    path = str(images[0])
    docs = [
        Document("a red house by the sea", id="text"),
        Document("", id="meta", metadata={"image_uri": path}),
        Document(b64(images[1]), id="chroma"),
        Document("caption", id="mixed", metadata={"image": path}),
        Document("", id="blocks", metadata={"content_blocks": [{"type": "image", "path": path}]}),
    ]
    originals = [d.model_copy(deep=True) for d in docs]
    out = rerank.compress_documents(docs, "a house")
    core = reranker.score(
        "a house",
        [
            "a red house by the sea",
            {"image": path},
            {"image": str(images[1])},
            {"text": "caption", "image": path},
            {"image": path},
        ],
    )
    assert len(out) == len(docs)  # top_n=None keeps every document
    by_id = {d.id: d.metadata["relevance_score"] for d in out}
    for doc, score in zip(docs, core, strict=True):
        assert abs(by_id[doc.id] - score) < 1e-5
    assert [d.metadata["relevance_score"] for d in out] == sorted(core.tolist(), reverse=True)
    assert docs == originals  # inputs untouched
    assert all("relevance_score" not in d.metadata for d in docs)
    mixed = next(d for d in out if d.id == "mixed")
    assert mixed.metadata["image"] == path and mixed.page_content == "caption"


def test_rerank_top_n_threshold_and_image_query(
    rerank: QwenVLRerank, reranker: QwenVLReranker, images: list[Path]
) -> None:
    texts = ["one", "two words", "three little words", "four", "five five"]
    docs = [Document(t) for t in texts]
    ranked = rerank.rerank("count", docs)
    assert sorted(r["index"] for r in ranked) == list(range(5))
    assert [r["index"] for r in rerank.rerank("count", docs, top_n=2)] == [
        r["index"] for r in ranked[:2]
    ]
    limited = rerank.model_copy(update={"top_n": 2}).compress_documents(docs, "count")
    assert [d.page_content for d in limited] == [texts[r["index"]] for r in ranked[:2]]
    threshold = (ranked[1]["relevance_score"] + ranked[2]["relevance_score"]) / 2
    kept = rerank.rerank("count", docs, score_threshold=threshold)
    assert [r["index"] for r in kept] == [r["index"] for r in ranked[:2]]
    assert rerank.rerank("count", []) == []
    image_query = Document("", metadata={"image": str(images[4])})
    got = rerank.rerank(image_query, texts)
    core = reranker.score({"image": str(images[4])}, texts)
    for r in got:
        assert abs(r["relevance_score"] - core[r["index"]]) < 1e-5
    mix = [{"type": "text", "text": "pick one"}, {"type": "image", "path": str(images[4])}]
    got_mix = rerank.rerank(mix, texts, top_n=1)
    core_mix = reranker.score({"text": "pick one", "image": str(images[4])}, texts)
    assert got_mix == [
        {
            "index": int(np.argmax(core_mix)),
            "relevance_score": pytest.approx(float(core_mix.max()), abs=1e-5),
        }
    ]


async def test_rerank_async_matches_sync(rerank: QwenVLRerank) -> None:
    docs = [Document(f"passage {i} about rivers" * (i + 1), id=str(i)) for i in range(6)]
    sync = rerank.compress_documents(docs, "rivers")
    got = await rerank.acompress_documents(docs, "rivers")
    assert [d.id for d in got] == [d.id for d in sync]
    for a, b in zip(got, sync, strict=True):
        assert abs(a.metadata["relevance_score"] - b.metadata["relevance_score"]) < 1e-6
    results = await asyncio.gather(*(rerank.arerank("rivers", docs) for _ in range(4)))
    for result in results:
        assert [r["index"] for r in result] == [int(d.id) for d in sync]  # type: ignore[arg-type]


# -- bad documents -------------------------------------------------------------------------------
def test_bad_documents_name_the_document(
    rerank: QwenVLRerank, embeddings: QwenVLEmbeddings, images: list[Path], tmp_path: Path
) -> None:
    good = Document("fine")
    missing = Document("x", id="gone", metadata={"image": str(images[0].parent / "missing.png")})
    with pytest.raises(MediaNotFoundError, match=r"document 1 \(id='gone'\)") as info:
        rerank.compress_documents([good, missing], "q")
    assert info.value.index == 1 and info.value.role == "document"
    bad_b64 = Document("x", id="b", metadata={"image": "data:image/png;base64,@@@not-base64@@@"})
    with pytest.raises(MediaDecodeError, match=r"document 2 \(id='b'\).*base64"):
        rerank.compress_documents([good, good, bad_b64], "q")
    corrupt = Document("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode())
    with pytest.raises(MediaDecodeError, match="document 0"):
        rerank.compress_documents([corrupt, good], "q")
    outside = tmp_path / "outside.png"
    make_image(40, 40).save(outside)
    refused = Document("x", id="secret", metadata={"image": str(outside)})
    with pytest.raises(MediaAccessError, match=r"document 1 \(id='secret'\).*allowed paths"):
        rerank.compress_documents([good, refused], "q")
    sneaky = Document("x", metadata={"image": str(images[0].parent / ".." / outside.name)})
    with pytest.raises(MediaAccessError):
        rerank.compress_documents([sneaky], "q")
    with pytest.raises(MediaAccessError, match="no local paths are allowed"):
        QwenVLRerank(model_name=rerank.model_name).compress_documents([refused], "q")
    with pytest.raises(MediaAccessError, match="input 0"):
        embeddings.embed_multimodal([refused])
    with pytest.raises(UnsupportedInputError, match="input 1: expected a string, got int"):
        embeddings.embed_documents(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(MediaNotFoundError, match="input 1"):
        embeddings.embed_image([str(images[0]), str(tmp_path / "nope.png")])
    with pytest.raises(MediaNotFoundError, match="input 1"):
        embeddings.embed_multimodal([good, missing])
    no_urls = QwenVLRerank(model_name=rerank.model_name, allow_urls=False)
    with pytest.raises(MediaAccessError, match="URL"):
        no_urls.compress_documents([Document("x", metadata={"image": "https://a.b/c.png"})], "q")
    with pytest.raises(UnsupportedInputError, match=r"content block 0.*audio"):
        rerank.compress_documents(
            [Document("x", metadata={"content_blocks": [{"type": "audio"}]})], "q"
        )
    with pytest.raises(MediaNotFoundError, match="query"):
        rerank.rerank({"image": str(tmp_path / "nope.png")}, [good])
    with pytest.raises(MediaAccessError, match="query"):
        rerank.rerank(refused, [good])


# -- copies, lists, odd documents ----------------------------------------------------------------
def test_copies_follow_their_new_settings(
    rerank: QwenVLRerank, embeddings: QwenVLEmbeddings, images: list[Path], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.png"
    make_image(50, 40, seed=9).save(elsewhere)
    doc = Document("x", metadata={"image": str(elsewhere)})
    with pytest.raises(MediaAccessError):
        rerank.rerank("q", [doc])
    widened = rerank.model_copy(update={"allowed_paths": [str(tmp_path)]})
    assert len(widened.rerank("q", [doc])) == 1
    with pytest.raises(MediaAccessError):  # the original keeps its own policy
        rerank.rerank("q", [doc])
    smaller = embeddings.model_copy(update={"max_pixels": 64 * 64})
    assert smaller.client.vision.max_pixels == 64 * 64
    assert embeddings.client.vision.max_pixels != 64 * 64
    assert smaller.client.loaded is embeddings.client.loaded  # same weights, new settings
    assert not close(
        smaller.embed_image([str(images[1])]), embeddings.embed_image([str(images[1])]), 1e-4
    )
    with pytest.raises(ConfigurationError, match="top_n"):
        rerank.model_copy(update={"top_n": 0}).rerank("q", ["d"])
    # replacing the given core in a copy uses the new core and its settings
    short = QwenVLEmbedder(embeddings.model_name, max_length=64)
    swapped = QwenVLEmbeddings(embedder=short).model_copy(
        update={"embedder": QwenVLEmbedder(embeddings.model_name, max_length=128)}
    )
    assert swapped.max_length == 128 and swapped.client.max_length == 128
    swapped.embedder = short  # an assignment too
    assert swapped.max_length == 64 and swapped.client is short


def test_lists_documents_and_prose(
    embeddings: QwenVLEmbeddings,
    embedder: QwenVLEmbedder,
    rerank: QwenVLRerank,
    reranker: QwenVLReranker,
    frame_files: list[Path],
    images: list[Path],
) -> None:
    frames = [str(p) for p in frame_files]
    # a list without dicts is one video given as frames, as in the core
    assert close(embeddings.embed_multimodal([frames]), embedder.embed([{"video": frames}]))
    allowed = embeddings.model_copy(update={"allowed_paths": [str(frame_files[0].parent)]})
    as_metadata = allowed.embed_multimodal([Document("", metadata={"video": frames})])
    assert close(as_metadata, embedder.embed([{"video": frames}]))  # frames: one video
    # a list of strings that are not image files is a list of text blocks
    words = embeddings.embed_multimodal([["a cat", "on a mat"]])
    assert close(words, embedder.embed([{"text": ["a cat", "on a mat"]}], instruction=DOC))
    wrapped = "data:image/png;base64," + base64.encodebytes(images[0].read_bytes()).decode()
    assert close(embeddings.embed_documents([wrapped]), embeddings.embed_image([str(images[0])]))
    prose = "data:image/svg+xml is the MIME type of SVG drawings"
    assert close(embeddings.embed_documents([prose]), embedder.embed([prose], instruction=DOC))
    # the same image in page_content and metadata is one image, not two
    twice = Document(b64(images[0]), metadata={"image": b64(images[0])})
    once = reranker.score("q", [{"image": str(images[0])}])
    assert abs(rerank.rerank("q", [twice])[0]["relevance_score"] - once[0]) < 1e-5
    broken = Document.model_construct(page_content=None, metadata={}, id="none")
    with pytest.raises(UnsupportedInputError, match=r"document 1 \(id='none'\).*page_content"):
        rerank.compress_documents([Document("ok"), broken], "q")
    # content blocks obey allowed_paths even when passed directly; core dicts are read as given
    strict = QwenVLRerank(model_name=rerank.model_name)
    with pytest.raises(MediaAccessError):
        strict.rerank("q", [[{"type": "image", "path": str(images[0])}]])
    assert len(strict.rerank("q", [{"image": str(images[0])}])) == 1


async def test_async_rerank_leaves_the_loop_free(rerank: QwenVLRerank) -> None:
    docs = [Document(f"passage {i} " * (10 * i + 5)) for i in range(8)]
    out, ticks = await await_counting_loop_turns(rerank.acompress_documents(docs, "passage"))
    assert len(out) == len(docs) and ticks > 1
