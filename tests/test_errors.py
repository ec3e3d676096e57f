"""Bad inputs raise typed errors naming the input; nothing is dropped or replaced."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_image

from qvl_integrations import QwenVLEmbedder, QwenVLReranker, VideoInput
from qvl_integrations.errors import (
    ConfigurationError,
    ImageTooLargeError,
    InputError,
    MediaDecodeError,
    MediaFetchError,
    MediaNotFoundError,
    UnsupportedInputError,
)


def _png_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "ok.png"
    make_image(64, 64, seed=2).save(path)
    return path.read_bytes()


def _assert_at(excinfo: pytest.ExceptionInfo[InputError], index: int) -> None:
    assert excinfo.value.index == index
    assert str(excinfo.value).startswith(f"input {index}: ")


def test_missing_file(embedder: QwenVLEmbedder, tmp_path: Path) -> None:
    with pytest.raises(MediaNotFoundError) as info:
        embedder.embed(["fine", "also fine", {"image": str(tmp_path / "nope.png")}])
    _assert_at(info, 2)
    assert VideoInput.of(str(tmp_path / "animated.gif")).kind == "path"  # GIFs may be videos
    assert "nope.png" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_zero_byte_image(embedder: QwenVLEmbedder, tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(MediaDecodeError, match="0 bytes") as info:
        embedder.embed([empty])
    _assert_at(info, 0)


def test_corrupt_image(embedder: QwenVLEmbedder, tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(MediaDecodeError) as info:
        embedder.embed(["x", junk])
    _assert_at(info, 1)
    assert info.value.__cause__ is not None


def test_truncated_image(embedder: QwenVLEmbedder, tmp_path: Path) -> None:
    data = _png_bytes(tmp_path)
    with pytest.raises(MediaDecodeError, match=r"truncated|corrupt|readable") as info:
        embedder.embed(["x", "y", data[: len(data) // 2]])
    _assert_at(info, 2)
    assert VideoInput.of(str(tmp_path / "animated.gif")).kind == "path"  # GIFs may be videos
    assert info.value.__cause__ is not None


def test_malformed_base64_and_data_uri(embedder: QwenVLEmbedder) -> None:
    with pytest.raises(MediaDecodeError, match="base64") as info:
        embedder.embed(["ok", {"image": "data:image/png;base64,@@@@not-base64@@@@"}])
    _assert_at(info, 1)
    with pytest.raises(MediaDecodeError) as info:
        embedder.embed([{"image": "A" * 65}])  # valid alphabet, impossible length
    _assert_at(info, 0)
    not_an_image = base64.b64encode(b"plain words, not pixels" * 5).decode()
    with pytest.raises(MediaDecodeError) as info:
        embedder.embed(["a", "b", "c", {"image": not_an_image}])
    _assert_at(info, 3)
    with pytest.raises(UnsupportedInputError, match="text/plain"):
        embedder.embed([{"image": "data:text/plain;base64,aGVsbG8="}])


@pytest.mark.parametrize("value", [42, 3.5, object(), None, {"txt": "typo"}])
def test_unsupported_inputs(embedder: QwenVLEmbedder, value: object) -> None:
    with pytest.raises(UnsupportedInputError) as info:
        embedder.embed(["fine", value])
    _assert_at(info, 1)
    assert isinstance(info.value, TypeError)


def test_single_string_instead_of_list(embedder: QwenVLEmbedder) -> None:
    with pytest.raises(ConfigurationError, match="list"):
        embedder.embed("not a list")


def test_decompression_bomb_cap(checkpoint: Path, tmp_path: Path) -> None:
    capped = QwenVLEmbedder(checkpoint, max_image_pixels=1000)
    path = tmp_path / "big.png"
    make_image(100, 100).save(path)
    with pytest.raises(ImageTooLargeError, match="10000") as info:
        capped.embed(["x", path])
    _assert_at(info, 1)
    with pytest.raises(ImageTooLargeError):
        capped.embed([make_image(100, 100)])


def test_empty_and_undecodable_video(embedder: QwenVLEmbedder, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaDecodeError, match="0 bytes") as info:
        embedder.embed(["x", empty])
    _assert_at(info, 1)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MediaDecodeError, match="video") as info:
        embedder.embed([{"video": str(broken)}])
    _assert_at(info, 0)
    with pytest.raises(MediaNotFoundError):
        embedder.embed([{"video": str(tmp_path / "missing.mp4")}])
    # an image where a video file belongs: say so, and how frames are given
    with pytest.raises(UnsupportedInputError, match="image file where a video") as info:
        embedder.embed(["x", "y", {"video": [str(tmp_path / "a.mp4"), str(tmp_path / "f.png")]}])
    _assert_at(info, 2)
    assert VideoInput.of(str(tmp_path / "animated.gif")).kind == "path"  # GIFs may be videos


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/image.png"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_unreachable_url(checkpoint: Path, silent_server: str) -> None:
    quick = QwenVLEmbedder(checkpoint, url_timeout_s=0.5)
    refused = f"http://127.0.0.1:{_free_port()}/cat.png"
    with pytest.raises(MediaFetchError, match="could not fetch") as info:
        quick.embed(["x", {"image": refused}])
    _assert_at(info, 1)
    with pytest.raises(MediaFetchError, match="timed out") as info:
        quick.embed([{"image": silent_server}])
    _assert_at(info, 0)


def test_reranker_names_document_and_query(reranker: QwenVLReranker, tmp_path: Path) -> None:
    with pytest.raises(MediaNotFoundError) as info:
        reranker.score("q", ["ok", {"image": str(tmp_path / "gone.png")}])
    assert info.value.index == 1 and info.value.role == "document"
    assert str(info.value).startswith("document 1: ")
    with pytest.raises(MediaNotFoundError) as info:
        reranker.score({"image": str(tmp_path / "gone.png")}, ["ok"])
    assert info.value.role == "query" and str(info.value).startswith("query: ")
    with pytest.raises(UnsupportedInputError) as info:
        reranker.score("q", ["a", {"text": "b", "instruction": "no"}])
    assert info.value.index == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"max_batch_tokens": 0},
        {"max_length": 3},
        {"dtype": "float64"},
        {"attn_implementation": "magic"},
        {"min_pixels": 10},
        {"max_pixels": 1024, "min_pixels": 4096},
        {"fps": 0},
        {"max_frames": 1},
        {"device": "no-such-device"},
    ],
)
def test_bad_options(checkpoint: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        QwenVLEmbedder(checkpoint, **kwargs)  # type: ignore[arg-type]


def test_unknown_option_is_a_type_error(checkpoint: Path) -> None:
    with pytest.raises(TypeError):
        QwenVLEmbedder(checkpoint, trust_remote_code=True)  # type: ignore[call-arg]


def test_extreme_aspect_ratio(embedder: QwenVLEmbedder) -> None:
    sliver = make_image(2000, 4, seed=3)
    with pytest.raises(MediaDecodeError, match="aspect") as info:
        embedder.embed(["x", sliver])
    _assert_at(info, 1)
    with pytest.raises(MediaDecodeError, match="aspect") as info:
        embedder.embed([{"video": [sliver, sliver]}])
    _assert_at(info, 0)


def test_reserved_placeholder_in_text(embedder: QwenVLEmbedder) -> None:
    with pytest.raises(UnsupportedInputError, match="reserved") as info:
        embedder.embed(["fine", {"image": make_image(32, 32), "text": "see <|image_pad|> here"}])
    _assert_at(info, 1)
    with pytest.raises(UnsupportedInputError, match="reserved") as info:
        embedder.embed(["a <|video_pad|> in plain text"])
    _assert_at(info, 0)
