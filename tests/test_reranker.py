"""Reranker behaviour: parity with the full LM head, batching, left padding, ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from reference_impl import Reference

from qvl_integrations import ConfigurationError, QwenVLReranker
from qvl_integrations.core.settings import DEFAULT_RERANK_INSTRUCTION

TOL = 1e-4


@pytest.fixture(scope="module")
def reference(checkpoint: Path) -> Reference:
    return Reference(checkpoint)


DOCS = ["a dog", "a cat sleeping on a sofa " * 8, "", "yes"]


def test_text_scores_equal_full_lm_head(reranker: QwenVLReranker, reference: Reference) -> None:
    scores = reranker.score("a cat", DOCS)
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    for score, doc in zip(scores, DOCS, strict=True):
        expected = reference.rerank({"text": "a cat"}, {"text": doc}, DEFAULT_RERANK_INSTRUCTION)
        assert abs(score - expected) <= TOL


def test_image_query_and_image_documents(
    reranker: QwenVLReranker, reference: Reference, image_file: Path
) -> None:
    small = make_image(50, 40, seed=4)
    docs = [{"image": str(image_file)}, "plain text", {"image": small, "text": "caption"}]
    scores = reranker.score({"image": small}, docs, instruction="Find the same picture")
    expected = [
        reference.rerank({"image": small}, {"image": str(image_file)}, "Find the same picture"),
        reference.rerank({"image": small}, {"text": "plain text"}, "Find the same picture"),
        reference.rerank(
            {"image": small}, {"image": small, "text": "caption"}, "Find the same picture"
        ),
    ]
    assert np.abs(scores - np.array(expected)).max() <= TOL


def test_video_documents(
    reranker: QwenVLReranker, reference: Reference, frame_files: list[Path]
) -> None:
    frames = [str(p) for p in frame_files]
    score = reranker.score("a clip", [{"video": frames}])[0]
    expected = reference.rerank({"text": "a clip"}, {"video": frames}, DEFAULT_RERANK_INSTRUCTION)
    assert abs(score - expected) <= TOL


def test_batched_equals_pair_by_pair(reranker: QwenVLReranker) -> None:
    docs = [*DOCS, make_image(70, 30, seed=9), {"text": "mixed", "image": make_image(30, 30)}]
    batched = reranker.score("query text", docs, batch_size=6)
    single = np.array([reranker.score("query text", [d], batch_size=1)[0] for d in docs])
    assert np.abs(batched - single).max() <= 1e-5


def test_rank_orders_best_first_with_top_k(reranker: QwenVLReranker) -> None:
    scores = reranker.score("a cat", DOCS)
    ranking = reranker.rank("a cat", DOCS)
    assert [i for i, _ in ranking] == list(np.argsort(-scores, kind="stable"))
    assert [s for _, s in ranking] == sorted(scores.tolist(), reverse=True)
    assert reranker.rank("a cat", DOCS, top_k=2) == ranking[:2]
    with pytest.raises(ConfigurationError):
        reranker.rank("a cat", DOCS, top_k=0)


def test_no_documents(reranker: QwenVLReranker) -> None:
    assert reranker.score("q", []).shape == (0,)
    assert reranker.rank("q", []) == []


def test_instruction_precedence(reranker: QwenVLReranker) -> None:
    default = reranker.score("q", ["d"])[0]
    custom = reranker.score("q", ["d"], instruction="Judge strictly")[0]
    from_query = reranker.score({"text": "q", "instruction": "Judge strictly"}, ["d"])[0]
    assert custom == pytest.approx(from_query, abs=1e-7)
    assert abs(custom - default) > 1e-6


def test_truncation_keeps_the_judgement_tail(checkpoint: Path) -> None:
    short = QwenVLReranker(checkpoint, max_length=64)
    long_doc = "word " * 300
    score = short.score("q", [long_doc, {"image": make_image(64, 64), "text": long_doc}])
    assert np.isfinite(score).all()
    # Only the end of the document is cut, so a longer tail of the same words changes nothing.
    assert short.score("q", ["word " * 200])[0] == pytest.approx(score[0], abs=1e-6)


def test_shared_prefix_pass_equals_plain_pass(reranker: QwenVLReranker) -> None:
    from qvl_integrations.core.encoding import encode_conversations, last_token_states
    from qvl_integrations.core.inputs import to_input
    from qvl_integrations.core.pixels import image_patches
    from qvl_integrations.core.prefix import _applies, forward_last_with_prefix
    from qvl_integrations.core.prompts import rerank_conversation

    loaded = reranker.loaded
    image = make_image(60, 40, seed=11)
    frames = [make_image(40, 40, seed=s) for s in range(3)]
    for query_value in (
        "a text query",
        {"image": image, "text": "and words"},
        {"video": frames, "text": "a clip"},
    ):
        query = to_input(query_value)
        query_media = reranker._media(query, None)
        docs = [to_input(d) for d in ("short", "longer text " * 9, {"image": image, "text": "x"})]
        conversations = [
            rerank_conversation(query, query_media, d, reranker._media(d, i), "judge")
            for i, d in enumerate(docs)
        ]

        patches = {id(i): image_patches(i, loaded.rules.geometry) for i in query_media.images}

        def encode(rows: list, known: dict | None = None) -> object:
            return encode_conversations(
                loaded.processor, rows, rules=loaded.rules, max_length=4096, known_patches=known
            )

        encoded = encode(conversations)
        plain = last_token_states(reranker._forward(encoded), encoded.lengths)
        reused = encode(conversations, patches)  # the query's patches, cut once, are the same
        assert reused.tensors.keys() == encoded.tensors.keys()
        for key, tensor in encoded.tensors.items():
            assert torch.equal(reused.tensors[key], tensor)
        cache = reranker._shared_prefix(query, query_media, "judge", patches)
        assert cache.ids is not None and not cache.layers
        assert cache.has_media == bool(query.images or query.videos)
        # A prefix with the query's media is reused even next to long rows; text alone is not.
        long_rows = [len(cache.ids) + 10 * len(cache.ids)] * 2
        ids = cache.ids.repeat(2, 1)
        padded = torch.cat([ids, torch.zeros(2, long_rows[0] - ids.shape[1], dtype=ids.dtype)], 1)
        assert _applies(cache, padded, long_rows) == cache.has_media
        for rows in (slice(0, 3), slice(1, 2), slice(2, 3)):  # a lone row reuses the prefix
            part = encode(conversations[rows], patches)
            shared = forward_last_with_prefix(
                loaded.model,
                part,
                images_per_row=[len(query.images) + len(d.images) for d in docs[rows]],
                videos_per_row=[len(query.videos)] * len(docs[rows]),
                shared_images=len(query.images),
                shared_videos=len(query.videos),
                cache=cache,
            )
            assert shared is not None and cache.layers
            assert torch.abs(shared - plain[rows]).max() <= 1e-5


def test_concurrent_scoring_matches_serial(reranker: QwenVLReranker) -> None:
    from concurrent.futures import ThreadPoolExecutor

    docs = [f"document number {i} " * (i + 1) for i in range(6)]
    queries = ["first query", {"image": make_image(40, 30, seed=2)}, "third"]
    serial = [reranker.score(q, docs) for q in queries]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda q: reranker.score(q, docs), queries))
    for one, other in zip(serial, parallel, strict=True):
        assert np.abs(one - other).max() <= 1e-6
