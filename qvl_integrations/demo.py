"""A short demo: embed and rerank bundled text, generated images and a generated video.

Run it with ``python -m qvl_integrations.demo`` (or ``qvl-demo``). It uses the
real checkpoints when they are on disk, in the Hugging Face cache, or can be
downloaded; otherwise it says so and runs on a tiny random checkpoint built
on the spot, whose numbers are meaningless.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from . import QwenVLEmbedder, QwenVLReranker

EMBEDDING_ID = "Qwen/Qwen3-VL-Embedding-2B"
RERANKER_ID = "Qwen/Qwen3-VL-Reranker-2B"
HUB_HOST = "huggingface.co"


def _draw(shape: str, color: str, size: tuple[int, int] = (224, 168)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    if shape == "circle":
        draw.ellipse((w * 0.25, h * 0.15, w * 0.75, h * 0.85), fill=color)
    elif shape == "square":
        draw.rectangle((w * 0.3, h * 0.2, w * 0.7, h * 0.8), fill=color)
    else:
        for x in range(0, w, 24):
            draw.rectangle((x, 0, x + 11, h), fill=color)
    return image


def _moving_dot_frames(count: int = 8, size: tuple[int, int] = (160, 120)) -> list[Image.Image]:
    frames = []
    for i in range(count):
        frame = Image.new("RGB", size, "black")
        x = 20 + i * (size[0] - 40) / max(count - 1, 1)
        y = size[1] / 2 + 25 * math.sin(i)
        ImageDraw.Draw(frame).ellipse((x - 12, y - 12, x + 12, y + 12), fill="yellow")
        frames.append(frame)
    return frames


def _write_video(frames: Sequence[Image.Image], path: Path, fps: int = 4) -> Path | None:
    """Write an mp4 with PyAV; ``None`` when PyAV is not installed."""
    try:
        import av
    except ImportError:
        return None
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _available(model_id: str) -> str | None:
    """Where ``model_id`` can be loaded from, or ``None`` if it cannot be had."""
    if Path(model_id).is_dir():
        return model_id
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return model_id
    return model_id if _hub_reachable() else None


def _samples(workdir: Path) -> tuple[list[str], list[Any], list[str]]:
    """Queries, documents and document labels."""
    frames = _moving_dot_frames()
    video = _write_video(frames, workdir / "moving_dot.mp4")
    documents: list[Any] = [
        "A red circle on a white background.",
        "Quarterly revenue grew by twelve percent.",
        _draw("circle", "red"),
        _draw("square", "blue"),
        _draw("stripes", "green"),
        {"video": str(video)} if video is not None else {"video": frames},
    ]
    labels = [
        "text: red circle",
        "text: revenue",
        "image: red circle",
        "image: blue square",
        "image: green stripes",
        "video: moving yellow dot" + ("" if video is not None else " (frames)"),
    ]
    queries = ["a red circle", "a yellow ball moving across the screen", "financial results"]
    return queries, documents, labels


def _table(rows: Sequence[str], cols: Sequence[str], values: np.ndarray) -> str:
    width = max(len(r) for r in rows)
    lines = [" " * width + " | " + " | ".join(f"{c[:14]:>14}" for c in cols)]
    for row, vals in zip(rows, values, strict=True):
        lines.append(f"{row:<{width}} | " + " | ".join(f"{v:>14.4f}" for v in vals))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="qvl-demo", description=__doc__)
    parser.add_argument(
        "--embedding-model",
        default=os.environ.get("QVL_EMBEDDING_MODEL", EMBEDDING_ID),
        help="hub id or local path (env QVL_EMBEDDING_MODEL)",
    )
    parser.add_argument(
        "--reranker-model",
        default=os.environ.get("QVL_RERANKER_MODEL", RERANKER_ID),
        help="hub id or local path (env QVL_RERANKER_MODEL)",
    )
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument(
        "--tiny", action="store_true", help="skip the real checkpoints; use the tiny random one"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="qvl-demo-") as tmp:
        workdir = Path(tmp)
        embedding = None if args.tiny else _available(args.embedding_model)
        reranking = None if args.tiny else _available(args.reranker_model)
        if embedding is None or reranking is None:
            from .testing import build_tiny_checkpoint

            missing = [
                name
                for name, found in (
                    (args.embedding_model, embedding),
                    (args.reranker_model, reranking),
                )
                if found is None
            ]
            reason = (
                "--tiny was given"
                if args.tiny
                else (
                    f"{', '.join(missing)} cannot be had here (not a local directory, not in the "
                    f"Hugging Face cache, and {HUB_HOST} is unreachable or HF_HUB_OFFLINE is set)"
                )
            )
            print(f"NOTE: {reason}.")
            print(
                "NOTE: running on a tiny RANDOMLY INITIALISED Qwen3-VL checkpoint instead. "
                "The pipeline is the real one, but its similarities and rankings are "
                "MEANINGLESS.\n"
            )
            tiny = str(build_tiny_checkpoint(workdir / "tiny-checkpoint"))
            embedding = embedding or tiny
            reranking = reranking or tiny

        queries, documents, labels = _samples(workdir)
        embedder = QwenVLEmbedder(embedding, device=args.device)
        reranker = QwenVLReranker(reranking, device=args.device)
        print(f"Embedding model: {embedding}\nReranker model:  {reranking}\n")

        query_vectors = embedder.embed_query(queries)
        doc_vectors = embedder.embed_documents(documents)
        print(f"Cosine similarity (queries x documents, {doc_vectors.shape[1]} dims):")
        print(_table(queries, labels, query_vectors @ doc_vectors.T))

        query = queries[0]
        print(f"\nReranking all documents for {query!r}:")
        for place, (index, score) in enumerate(reranker.rank(query, documents), start=1):
            print(f"  {place}. {score:.4f}  {labels[index]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
