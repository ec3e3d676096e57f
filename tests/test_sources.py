"""Media named inside documents: inline-image detection, content blocks, the access policy."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from conftest import make_image

from qvl_integrations.core.inputs import MultimodalInput
from qvl_integrations.core.sources import MediaAccess, blocks_to_input, is_inline_image
from qvl_integrations.errors import MediaAccessError, MediaDecodeError, UnsupportedInputError


def _encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_inline_image_detection_by_signature(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"x.{fmt.lower()}"
    make_image(20, 20).save(path, format=fmt)
    assert is_inline_image(_encoded(path))
    assert is_inline_image("data:image/png;base64," + _encoded(path))


@pytest.mark.parametrize(
    "text",
    [
        "a photo of a cat",
        "",
        "0123456789abcdef" * 4,  # a hex id is valid base64 but no image
        base64.b64encode(b"just some words, encoded as base64 for no reason").decode(),
        "iVBORw0KGgo",  # too short
        "data:image/svg+xml is the MIME type of SVG files",  # prose, not a URI
        base64.b64encode(b"BM is how this sentence starts, no bitmap").decode(),
        "iVBORw0KGgo AAAANSUhEUgAAAAoAAAAKCAIAAAACUFjqAAAADUlEQVR4nGNgGAWkAwABNgABVtF",  # a space
    ],
)
def test_text_is_not_taken_for_an_image(text: str) -> None:
    assert not is_inline_image(text)


def test_a_line_wrapped_data_uri_is_an_image(tmp_path: Path) -> None:
    path = tmp_path / "w.png"
    make_image(40, 40).save(path)
    wrapped = "data:image/png;base64," + base64.encodebytes(path.read_bytes()).decode()
    assert "\n" in wrapped and is_inline_image(wrapped)


def test_a_malformed_data_uri_is_still_an_image_and_fails_loudly() -> None:
    assert is_inline_image("data:image/png;base64,@@@not-base64@@@")
    with pytest.raises(MediaDecodeError):
        blocks_to_input([{"type": "image", "url": "data:image/png;base64,@@@not-base64@@@"}])


def test_content_block_forms(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    make_image(30, 30).save(path)
    data = _encoded(path)
    item = blocks_to_input(
        [
            "loose text",
            {"type": "text", "text": "typed text"},
            {"type": "image", "url": "https://example.com/a.png"},
            {"type": "image", "base64": data, "mime_type": "image/png"},
            {"type": "image", "source_type": "base64", "data": data, "mime_type": "image/png"},
            {"type": "image", "source_type": "url", "url": "file://" + str(path)},
            {"type": "image", "path": str(path)},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}},
            {"type": "image_url", "image_url": "https://example.com/b.png"},
            {"type": "video", "url": "https://example.com/clip.mp4"},
            {"type": "video", "path": str(tmp_path / "clip.mp4")},
        ]
    )
    assert item.texts == ("loose text", "typed text")
    assert [i.kind for i in item.images] == [
        "url",
        "base64",
        "base64",
        "path",
        "path",
        "base64",
        "url",
    ]
    assert item.images[3].source == path
    assert [v.kind for v in item.videos] == ["url", "path"]
    assert blocks_to_input([]).is_empty


@pytest.mark.parametrize(
    ("block", "error", "message"),
    [
        ({"type": "audio", "url": "x.wav"}, UnsupportedInputError, "type 'audio'"),
        ({"type": "image", "file_id": "file-123"}, UnsupportedInputError, "file id"),
        ({"type": "image"}, UnsupportedInputError, "none of"),
        ({"type": "image", "base64": ""}, UnsupportedInputError, "empty base64"),
        ({"type": "video", "base64": "AAAA"}, UnsupportedInputError, "video blocks"),
        ({"type": "text"}, UnsupportedInputError, "text block"),
        ({"type": "image", "base64": "@@@@"}, MediaDecodeError, "malformed base64"),
        (42, UnsupportedInputError, "dict or str"),
    ],
)
def test_bad_blocks_are_refused_with_their_position(
    block: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"content block 1: .*{message}"):
        blocks_to_input(["fine", block])


def test_access_policy(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    inside = root / "in.png"
    outside = tmp_path / "out.png"
    make_image(10, 10).save(inside)
    make_image(10, 10).save(outside)
    link = root / "link.png"
    os.symlink(outside, link)
    policy = MediaAccess.create([root])
    assert policy.check(MultimodalInput(images=(str(inside),))).images[0].kind == "path"
    for refused in (outside, root / ".." / "out.png", link):
        with pytest.raises(MediaAccessError, match="outside the allowed paths"):
            policy.check(MultimodalInput(images=(str(refused),)))
    with pytest.raises(MediaAccessError):
        policy.check(MultimodalInput(videos=([str(inside), str(outside)],)))  # frames too
    with pytest.raises(MediaAccessError, match="no local paths"):
        MediaAccess.create().check(MultimodalInput(images=(str(inside),)))
    url = MultimodalInput(images=("https://example.com/a.png",), videos=("https://e.com/v.mp4",))
    assert MediaAccess.create().check(url) is url
    with pytest.raises(MediaAccessError, match="URL"):
        MediaAccess.create(allow_urls=False).check(url)
    inline = MultimodalInput(images=(_encoded(inside),))
    assert MediaAccess.create(allow_urls=False).check(inline) is inline
