"""Session fixtures: one tiny random Qwen3-VL checkpoint, loaded through the public API."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qvl_integrations import QwenVLEmbedder, QwenVLReranker
from qvl_integrations._compat import ensure_torchvision

T = TypeVar("T")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_torchvision()
    from qvl_integrations.testing import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-qwen3-vl"))


@pytest.fixture(scope="session")
def embedder(checkpoint: Path) -> QwenVLEmbedder:
    return QwenVLEmbedder(checkpoint, batch_size=4)


@pytest.fixture(scope="session")
def reranker(checkpoint: Path) -> QwenVLReranker:
    return QwenVLReranker(checkpoint, batch_size=4)


def make_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A deterministic noisy gradient image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


@pytest.fixture()
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    make_image(120, 80, seed=1).save(path)
    return path


@pytest.fixture()
def frame_files(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(5):
        path = tmp_path / f"frame_{i}.png"
        make_image(64, 48, seed=10 + i).save(path)
        paths.append(path)
    return paths


def write_mp4(path: Path, frames: int = 6, size: tuple[int, int] = (64, 48), fps: int = 2) -> Path:
    """Write a tiny H.264 video with PyAV."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = make_image(size[0], size[1], seed=100 + i)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture()
def mp4_file(tmp_path: Path) -> Iterator[Path]:
    yield write_mp4(tmp_path / "clip.mp4")


async def await_counting_loop_turns(awaitable: Awaitable[T]) -> tuple[T, int]:
    """Await ``awaitable`` while a second task counts event-loop turns.

    More than one turn means the loop kept running while the awaited work was
    done (it did not block the loop).
    """
    turns = 0
    done = asyncio.Event()

    async def count() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    try:
        result = await awaitable
    finally:
        done.set()
        await counter
    return result, turns
