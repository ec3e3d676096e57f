"""http(s) media: fetched with a time-out, then treated exactly like local files."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qvl_integrations import QwenVLEmbedder
from qvl_integrations.errors import MediaFetchError


@pytest.fixture()
def served(tmp_path: Path, image_file: Path, mp4_file: Path) -> Iterator[str]:
    """A loopback HTTP server over a folder holding the test image and video."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "picture.png").write_bytes(image_file.read_bytes())
    (tmp_path / "www" / "clip.mp4").write_bytes(mp4_file.read_bytes())
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www")
    )
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_url_media_equal_local_files(
    embedder: QwenVLEmbedder, served: str, image_file: Path, mp4_file: Path
) -> None:
    remote = embedder.embed([{"image": f"{served}/picture.png"}, {"video": f"{served}/clip.mp4"}])
    local = embedder.embed([image_file, {"video": str(mp4_file)}])
    assert np.abs(remote - local).max() <= 1e-6


def test_missing_url_names_the_status(embedder: QwenVLEmbedder, served: str) -> None:
    with pytest.raises(MediaFetchError, match="404") as info:
        embedder.embed(["ok", {"image": f"{served}/nope.png"}])
    assert info.value.index == 1
