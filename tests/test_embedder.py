"""Embedder behaviour on the tiny checkpoint: parity, pooling, batching, Matryoshka, precision."""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from reference_impl import Reference

from qvl_integrations import ConfigurationError, MultimodalInput, QwenVLEmbedder

TOL = 1e-4


@pytest.fixture(scope="module")
def reference(checkpoint: Path) -> Reference:
    return Reference(checkpoint)


def test_shapes_for_zero_one_and_many(embedder: QwenVLEmbedder) -> None:
    d = embedder.dimension
    assert embedder.embed([]).shape == (0, d)
    one = embedder.embed(["hello"])
    assert one.shape == (1, d) and one.dtype == np.float32
    many = embedder.embed(["a", "b", "c"])
    assert many.shape == (3, d)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)


def test_text_parity_with_reference(embedder: QwenVLEmbedder, reference: Reference) -> None:
    texts = ["hello world", "yes no " * 40, "", "Ünïcödé ✓ text"]
    ours = embedder.embed(texts)
    for row, text in zip(ours, texts, strict=True):
        # Like the authors' {"text": ""}, an empty string is an empty text item, not NULL.
        expected = reference.embed(text=text)
        assert np.abs(row - expected).max() <= TOL


def test_empty_input_is_null(embedder: QwenVLEmbedder, reference: Reference) -> None:
    ours = embedder.embed([{}, MultimodalInput()])
    expected = reference.embed()
    assert np.abs(ours - expected).max() <= TOL
    assert np.abs(ours[0] - embedder.embed(["NULL"])[0]).max() <= 1e-6


def test_image_and_mixed_parity(
    embedder: QwenVLEmbedder, reference: Reference, image_file: Path
) -> None:
    small = make_image(40, 30, seed=3)
    inputs = [
        {"image": str(image_file)},
        {"image": small, "text": "a small picture"},
        {"image": [str(image_file), small], "text": ["two", "texts"]},
    ]
    ours = embedder.embed(inputs)
    expected = [
        reference.embed(image=str(image_file)),
        reference.embed(image=small, text="a small picture"),
        reference.embed(image=[str(image_file), small], text=["two", "texts"]),
    ]
    for row, exp in zip(ours, expected, strict=True):
        assert np.abs(row - exp).max() <= TOL


def test_frame_list_video_parity(
    embedder: QwenVLEmbedder, reference: Reference, frame_files: list[Path]
) -> None:
    frames = [str(p) for p in frame_files]
    ours = embedder.embed([{"video": frames, "text": "a clip"}])[0]
    expected = reference.embed(video=frames, text="a clip")
    assert np.abs(ours - expected).max() <= TOL


def test_frame_list_longer_than_max_frames_is_subsampled(
    checkpoint: Path, frame_files: list[Path]
) -> None:
    emb = QwenVLEmbedder(checkpoint, max_frames=2)
    frames = [str(p) for p in frame_files]
    # linspace(0, 4, 2) keeps the first and the last frame.
    kept = emb.embed([{"video": [frames[0], frames[-1]]}])
    sampled = emb.embed([{"video": frames}])
    np.testing.assert_allclose(sampled, kept, atol=1e-6)


def test_mp4_video_matches_reference(
    embedder: QwenVLEmbedder, reference: Reference, mp4_file: Path
) -> None:
    ours = embedder.embed([{"video": str(mp4_file)}, mp4_file])
    expected = reference.embed(video=str(mp4_file))
    assert np.abs(ours[0] - expected).max() <= TOL
    np.testing.assert_allclose(ours[0], ours[1], atol=1e-6)


def test_custom_instruction_parity(embedder: QwenVLEmbedder, reference: Reference) -> None:
    ours = embedder.embed(["find cats"], instruction="  Retrieve pictures of animals ")[0]
    expected = reference.embed(text="find cats", instruction="Retrieve pictures of animals")
    assert np.abs(ours - expected).max() <= TOL
    per_input = embedder.embed(
        [{"text": "find cats", "instruction": "Retrieve pictures of animals"}]
    )
    np.testing.assert_allclose(per_input[0], ours, atol=1e-6)
    other = embedder.embed(["find cats"])[0]
    assert np.abs(other - ours).max() > 1e-3


def test_query_and_document_defaults(embedder: QwenVLEmbedder, reference: Reference) -> None:
    query = embedder.embed_query(["cats"])[0]
    document = embedder.embed_documents(["cats"])[0]
    expected_query = reference.embed(
        text="cats", instruction="Retrieve images or text relevant to the user's query."
    )
    assert np.abs(query - expected_query).max() <= TOL
    assert np.abs(document - reference.embed(text="cats")).max() <= TOL


def test_batch_invariance_and_order(embedder: QwenVLEmbedder) -> None:
    inputs = [
        "short",
        "a much longer text " * 30,
        make_image(90, 60, seed=5),
        "mid length text here " * 5,
        {"text": "with image", "image": make_image(33, 70, seed=6)},
        "",
    ]
    batched = embedder.embed(inputs, batch_size=4)
    alone = np.stack([embedder.embed([x], batch_size=1)[0] for x in inputs])
    assert np.abs(batched - alone).max() <= 1e-5
    reversed_batch = embedder.embed(inputs[::-1], batch_size=3)
    assert np.abs(reversed_batch[::-1] - batched).max() <= 1e-5


def test_token_budget_splits_batches(checkpoint: Path) -> None:
    tight = QwenVLEmbedder(checkpoint, batch_size=64, max_batch_tokens=64)
    loose = QwenVLEmbedder(checkpoint, batch_size=64)
    texts = [f"text number {i} " * (i + 1) for i in range(6)]
    assert np.abs(tight.embed(texts) - loose.embed(texts)).max() <= 1e-5


def test_matryoshka_renormalises(embedder: QwenVLEmbedder) -> None:
    full = embedder.embed(["matryoshka"])[0]
    small = embedder.embed(["matryoshka"], dim=16)[0]
    expected = full[:16] / np.linalg.norm(full[:16])
    np.testing.assert_allclose(small, expected, atol=1e-6)
    raw = embedder.embed(["matryoshka"], dim=16, normalize=False)[0]
    raw_full = embedder.embed(["matryoshka"], normalize=False)[0]
    np.testing.assert_allclose(raw, raw_full[:16], atol=1e-5)


@pytest.mark.parametrize("dim", [0, -1, 10**6, 2.5, True])
def test_bad_dim_is_rejected(embedder: QwenVLEmbedder, dim: object) -> None:
    with pytest.raises(ConfigurationError, match="dim"):
        embedder.embed(["x"], dim=dim)  # type: ignore[arg-type]


def test_int8_and_binary_precision(embedder: QwenVLEmbedder) -> None:
    floats = embedder.embed(["alpha", "beta"])
    int8 = embedder.embed(["alpha", "beta"], precision="int8")
    assert int8.dtype == np.int8 and int8.shape == floats.shape
    np.testing.assert_array_equal(int8, np.rint(floats * 127).astype(np.int8))
    bits = embedder.embed(["alpha", "beta"], precision="binary")
    assert bits.dtype == np.uint8 and bits.shape == (2, (floats.shape[1] + 7) // 8)
    np.testing.assert_array_equal(np.unpackbits(bits, axis=1)[:, : floats.shape[1]], floats > 0)
    with pytest.raises(ConfigurationError):
        embedder.embed(["x"], precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        embedder.embed(["x"], precision="int8", normalize=False)


def test_same_pixels_in_every_form_give_the_same_vector(
    embedder: QwenVLEmbedder, image_file: Path
) -> None:
    raw = image_file.read_bytes()
    b64 = base64.b64encode(raw).decode()
    forms = [
        image_file,
        {"image": str(image_file)},
        {"image": image_file.as_uri()},
        raw,
        io.BytesIO(raw),
        {"image": b64},
        {"image": "data:image/png;base64," + b64},
        MultimodalInput(images=[raw]),
        {"image": Image.open(image_file)},
    ]
    vectors = embedder.embed(forms)
    assert np.abs(vectors - vectors[0]).max() <= 1e-6


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "LA", "1"])
def test_any_pil_mode_is_accepted(embedder: QwenVLEmbedder, mode: str) -> None:
    vector = embedder.embed([make_image(50, 40, seed=7, mode=mode)])
    assert vector.shape == (1, embedder.dimension) and np.isfinite(vector).all()


def test_sixteen_bit_image_is_scaled_not_clipped(embedder: QwenVLEmbedder) -> None:
    gradient = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1))
    sixteen = Image.fromarray(gradient)
    assert sixteen.mode == "I;16"
    eight = Image.fromarray(np.round(gradient / 65535 * 255).astype(np.uint8))
    a, b = embedder.embed([sixteen, eight])
    assert np.abs(a - b).max() <= 1e-3


def test_truncation_keeps_prompt_tail_and_visual_tokens(checkpoint: Path) -> None:
    emb = QwenVLEmbedder(checkpoint, max_length=64)
    long_text = "word " * 200
    image = make_image(64, 64, seed=8)
    vectors = emb.embed([long_text, {"image": image, "text": long_text}])
    assert np.isfinite(vectors).all()
    # Cutting the text further must not change the result: the kept prefix is identical.
    shorter = emb.embed(["word " * 120])
    np.testing.assert_allclose(vectors[0], shorter[0], atol=1e-5)


def test_threads_share_the_model_safely(embedder: QwenVLEmbedder) -> None:
    texts = [f"thread text {i}" for i in range(6)]
    expected = embedder.embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(embedder.embed(texts))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for result in results:
        assert np.abs(result - expected).max() <= 1e-6


def test_lazy_loading_and_sharing(checkpoint: Path) -> None:
    first = QwenVLEmbedder(checkpoint)
    second = QwenVLEmbedder(checkpoint, batch_size=2)
    assert not first.is_loaded
    assert first.loaded is second.loaded
    other_dtype = QwenVLEmbedder(checkpoint, dtype="bfloat16")
    assert other_dtype.key != first.key


def test_default_cpu_budget_is_the_largest_input(checkpoint: Path) -> None:
    auto = QwenVLEmbedder(checkpoint, batch_size=8)
    # No batch holds more (padded) tokens than the largest input: one-at-a-time memory.
    for batch in auto._plan([100, 40, 40, 30, 25], None):
        assert max([100, 40, 40, 30, 25][i] for i in batch) * len(batch) <= 100
    assert auto._plan([100, 40, 40], None)[0] == [0]
    explicit = QwenVLEmbedder(checkpoint, batch_size=8, max_batch_tokens=10_000)
    assert explicit._plan([100, 90, 95], None) == [[0, 2, 1]]


def test_progress_bar_on_request(
    embedder: QwenVLEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder.embed(["a", "b", "c"], show_progress=True)
    assert "Embedding" in capsys.readouterr().err
    embedder.embed(["a", "b", "c"])
    assert "Embedding" not in capsys.readouterr().err


def test_pickling_carries_settings_not_weights(embedder: QwenVLEmbedder) -> None:
    import pickle

    before = embedder.embed(["pickled"])
    assert embedder.is_loaded
    blob = pickle.dumps(embedder)
    assert len(blob) < 10_000  # settings only; the tiny model's weights alone are far larger
    clone = pickle.loads(blob)
    assert not clone.is_loaded
    assert np.array_equal(clone.embed(["pickled"]), before)
    assert clone.loaded is embedder.loaded  # re-attached to the shared model, not reloaded
