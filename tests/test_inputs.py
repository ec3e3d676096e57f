"""The edge: every accepted form becomes one frozen, typed input."""

from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

import pytest
from conftest import make_image

from qvl_integrations import ImageInput, MultimodalInput, VideoInput, to_input, to_inputs
from qvl_integrations.core.inputs import decode_inline_image
from qvl_integrations.errors import ConfigurationError, MediaDecodeError, UnsupportedInputError


def test_string_is_always_text() -> None:
    item = to_input("cat.png")
    assert item.texts == ("cat.png",) and not item.images


def test_image_forms(tmp_path: Path) -> None:
    image = make_image(8, 8)
    raw = b"\x89PNG fake"
    b64 = base64.b64encode(b"x" * 60).decode()
    assert to_input(image).images[0].kind == "pil"
    assert to_input(raw).images[0].source == raw
    assert to_input(io.BytesIO(raw)).images[0].source == raw
    assert to_input(tmp_path / "a.png").images[0].kind == "path"
    assert ImageInput.of("https://x.test/a.png?s=1").kind == "url"
    assert ImageInput.of("file:///tmp/a%20b.png").source == Path("/tmp/a b.png")
    assert ImageInput.of(b64).kind == "base64"
    assert decode_inline_image(ImageInput.of(b64).source) == b"x" * 60  # type: ignore[arg-type]
    uri = ImageInput.of("data:image/png;base64," + b64)
    assert uri.kind == "base64" and uri.source == "data:image/png;base64," + b64
    assert decode_inline_image("data:image/png;base64," + b64) == b"x" * 60
    url_safe = base64.urlsafe_b64encode(b"\xfb\xff" * 40).decode().rstrip("=")
    assert decode_inline_image(url_safe) == b"\xfb\xff" * 40
    assert ImageInput.of("short/relative.png").kind == "path"


def test_video_forms(tmp_path: Path) -> None:
    assert to_input(tmp_path / "clip.mp4").videos[0].kind == "path"
    frames = to_input([make_image(8, 8), make_image(8, 8)]).videos[0]
    assert frames.kind == "frames" and len(frames.source) == 2
    assert VideoInput.of("https://x.test/v.mp4").kind == "url"
    with pytest.raises(UnsupportedInputError):
        VideoInput.of([])


def test_authors_dict_format() -> None:
    item = to_input(
        {
            "text": ["a", "b"],
            "image": [make_image(4, 4), "x.png"],
            "video": [["f0.jpg", "f1.jpg"], "clip.mp4"],
            "instruction": "Do it",
            "fps": 2.0,
            "max_frames": 8,
        }
    )
    assert item.texts == ("a", "b")
    assert [i.kind for i in item.images] == ["pil", "path"]
    assert [v.kind for v in item.videos] == ["frames", "path"]
    assert (item.instruction, item.fps, item.max_frames) == ("Do it", 2.0, 8)
    one_frame_list = to_input({"video": ["f0.jpg", "f1.jpg"]})
    assert len(one_frame_list.videos) == 1
    assert to_input({}).is_empty


def test_input_is_frozen() -> None:
    item = MultimodalInput(texts="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.texts = ("y",)  # type: ignore[misc]


@pytest.mark.parametrize(
    "value",
    [
        {"text": 3},
        {"fps": -1},
        {"max_frames": 1},
        {"instruction": 5},
        {"unknown": 1},
        {"image": 3.0},
    ],
)
def test_bad_dicts(value: dict[str, object]) -> None:
    with pytest.raises(UnsupportedInputError):
        to_input(value)


def test_to_inputs_names_index_and_rejects_bare_string() -> None:
    with pytest.raises(MediaDecodeError) as info:
        to_inputs(["a", {"image": "data:image/png;base64,%%%"}])
    assert info.value.index == 1
    with pytest.raises(ConfigurationError):
        to_inputs("abc")
    assert len(to_inputs(iter(["a", "b"]))) == 2
