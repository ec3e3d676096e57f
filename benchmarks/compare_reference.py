"""Compare ``qvl_integrations``' core with the authors' reference implementation.

Runs, in one process with one CPU thread, the same inputs through the authors'
``Qwen3VLEmbedder`` / ``Qwen3VLReranker`` (imported at run time from a checkout
of https://github.com/QwenLM/Qwen3-VL-Embedding, never copied) and through
:class:`~qvl_integrations.QwenVLEmbedder` / :class:`~qvl_integrations.QwenVLReranker`:

* ``texts``: 64 mixed-length texts embedded;
* ``images``: 16 images of various sizes embedded;
* ``rerank-texts``: one text query against 32 mixed-length text documents;
* ``rerank-images``: one text query against 8 image documents.

For each case it checks that both give the same vectors / scores (max abs
difference <= 1e-4, else the exit status is 1), times both (one warm-up, then
the median of ``--repeats`` alternating runs), and measures the peak memory of
one run of each side in a fresh subprocess. It prints a Markdown table and can
write everything to ``--json``. See ``benchmarks/README.md``.

Usage::

    python benchmarks/compare_reference.py --reference Qwen3-VL-Embedding
    python benchmarks/compare_reference.py --reference-files DIR --repeats 7 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import json
import math
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

TOLERANCE = 1e-4
BATCH_SIZE = 16
N_TEXTS = 64
N_IMAGES = 16
N_DOCUMENTS = 32
N_IMAGE_DOCUMENTS = 8

EMBEDDING_FILE = "qwen3_vl_embedding.py"
RERANKER_FILE = "qwen3_vl_reranker.py"
REFERENCE_SUBDIR = Path("src", "models")

#: Speed-ups (reference time / our time) we aim at; informational, not part of the exit status.
FLOORS: dict[str, float] = {
    "texts": 2.5,
    "images": 1.4,
    "rerank-texts": 4.0,
    "rerank-images": 4.0,
    "rerank-passages": 4.0,
    "rerank-image-query": 4.0,
}

SHIM_NOTE = (
    "rerank-images, rerank-image-query: the reference's `tokenize` leaves "
    "`mm_token_type_ids` an unpadded Python list, which crashes transformers 5.x on "
    "image/video pairs; the harness wraps that "
    "instance's `tokenize` to turn it into a LongTensor (valid: the reference runs one pair "
    "at a time, unpadded and untruncated). Nothing else is changed."
)

# Ordinary English words (many of them in the tiny checkpoint's tokenizer corpus).
_WORD_LIST = (
    "the a an of to and in on at by for with from into over under near after before "
    "small large brown green blue red old new quick lazy clear bright dark quiet long short "
    "dog cat fox bird horse car bicycle window mountain river city village field sky road "
    "house building stone bridge garden tree flower letter friend person child teacher "
    "runs jumps looks opens writes reads decides shows ranks finds carries builds watches "
    "image video text picture document query answer question model search engine page "
    "relevance quality information weather wind rain today tomorrow morning afternoon "
    "capital country France Paris number recipe flour egg salt water coffee music song "
    "because while although however then also very often never always sometimes perhaps "
    "one two three four five ten hundred thousand first second last next every many few"
)
_WORDS: tuple[str, ...] = tuple(_WORD_LIST.split())

Implementation = Literal["reference", "ours"]


# -- workload ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """Everything both sides run on; JSON-serialisable for the memory subprocesses.

    Attributes:
        embedding_checkpoint: Checkpoint directory of the embedders.
        reranker_checkpoint: Checkpoint directory of the rerankers.
        embedding_file: Path of the reference ``qwen3_vl_embedding.py``.
        reranker_file: Path of the reference ``qwen3_vl_reranker.py``.
        texts: Texts to embed.
        images: Image file paths to embed.
        image_areas: Pixel area of each image (to pick the smallest for warm-ups).
        query: Text query of both reranking cases.
        documents: Text documents to rerank.
        image_documents: Image file paths to rerank.
        passages: Short text passages (search-result snippets) to rerank.
    """

    embedding_checkpoint: str
    reranker_checkpoint: str
    embedding_file: str
    reranker_file: str
    texts: list[str]
    images: list[str]
    image_areas: list[int]
    query: str
    documents: list[str]
    image_documents: list[str]
    passages: list[str]


def _log_uniform_words(rng: random.Random, low: int, high: int) -> str:
    """A text of log-uniformly distributed length in words, in sentences of 4-16 words."""
    count = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    words: list[str] = []
    while len(words) < count:
        sentence = [rng.choice(_WORDS) for _ in range(min(rng.randint(4, 16), count - len(words)))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        words.extend(sentence)
    return " ".join(words)


def _write_images(
    rng: np.random.Generator, folder: Path, count: int
) -> tuple[list[str], list[int]]:
    """Gradient-plus-noise images from 64x48 to 1000x700, alternately PNG and JPEG, shuffled."""
    from PIL import Image

    aspects = (0.75, 1.0, 1.5, 0.6, 1.25, 0.7)
    sizes = []
    for i in range(count):
        width = round(64 * (1000 / 64) ** (i / (count - 1)))
        aspect = 0.75 if i == 0 else 0.7 if i == count - 1 else aspects[i % len(aspects)]
        sizes.append((width, min(700, round(width * aspect))))
    paths: list[str] = []
    areas: list[int] = []
    for i in rng.permutation(count).tolist():
        width, height = sizes[i]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack(
            [255 * xs / width, 255 * ys / height, 127 + 127 * np.sin((xs + ys) / 17.0)], axis=-1
        )
        noisy = base + rng.normal(0.0, 40.0, size=base.shape)
        pixels = np.clip(noisy, 0, 255).astype(np.uint8)
        suffix = "png" if len(paths) % 2 == 0 else "jpg"
        path = folder / f"image_{len(paths):02d}_{width}x{height}.{suffix}"
        image = Image.fromarray(pixels)
        if suffix == "jpg":
            image.save(path, quality=90)
        else:
            image.save(path)
        paths.append(str(path))
        areas.append(width * height)
    return paths, areas


def make_workload(
    folder: Path,
    *,
    embedding_checkpoint: str,
    reranker_checkpoint: str,
    embedding_file: str,
    reranker_file: str,
    seed: int,
) -> Workload:
    """Generate the deterministic inputs (texts in memory, images under ``folder``).

    Args:
        folder: Directory for the image files.
        embedding_checkpoint: Checkpoint of the embedding cases.
        reranker_checkpoint: Checkpoint of the reranking cases.
        embedding_file: Reference embedding module path.
        reranker_file: Reference reranker module path.
        seed: Seed of every random choice.

    Returns:
        The workload.
    """
    rng = random.Random(seed)
    texts = [_log_uniform_words(rng, 3, 500) for _ in range(N_TEXTS)]
    query = "Which documents describe a quick brown fox near the old stone bridge in Paris?"
    documents = [_log_uniform_words(rng, 3, 400) for _ in range(N_DOCUMENTS)]
    passages = [_log_uniform_words(rng, 10, 80) for _ in range(N_DOCUMENTS)]
    images, areas = _write_images(np.random.default_rng(seed), folder, N_IMAGES)
    return Workload(
        embedding_checkpoint=embedding_checkpoint,
        reranker_checkpoint=reranker_checkpoint,
        embedding_file=embedding_file,
        reranker_file=reranker_file,
        texts=texts,
        images=images,
        image_areas=areas,
        query=query,
        documents=documents,
        image_documents=images[:: N_IMAGES // N_IMAGE_DOCUMENTS][:N_IMAGE_DOCUMENTS],
        passages=passages,
    )


@dataclass(frozen=True)
class Case:
    """One comparison: what is embedded or reranked, as dicts both sides accept.

    Attributes:
        name: Short name (a key of :data:`FLOORS`).
        role: ``"embedding"`` or ``"reranker"``.
        inputs: Embedding inputs, or the reranking documents.
        query: Reranking query (``None`` for embedding cases).
        warmup: Index into ``inputs`` of a small input for the memory warm-up.
        needs_shim: Whether the reference reranker needs the ``tokenize`` shim.
    """

    name: str
    role: Literal["embedding", "reranker"]
    inputs: list[dict[str, str]]
    query: dict[str, str] | None = None
    warmup: int = 0
    needs_shim: bool = False

    def warmup_case(self) -> Case:
        """The same case on its single small warm-up input."""
        return dataclasses.replace(self, inputs=[self.inputs[self.warmup]], warmup=0)


def make_cases(workload: Workload) -> list[Case]:
    """The comparisons of the benchmark."""
    texts = workload.texts
    documents = workload.documents
    smallest_image = int(np.argmin(workload.image_areas))
    image_docs = workload.image_documents
    areas = dict(zip(workload.images, workload.image_areas, strict=True))
    return [
        Case(
            "texts",
            "embedding",
            [{"text": t} for t in texts],
            warmup=min(range(len(texts)), key=lambda i: len(texts[i])),
        ),
        Case("images", "embedding", [{"image": p} for p in workload.images], warmup=smallest_image),
        Case(
            "rerank-texts",
            "reranker",
            [{"text": d} for d in documents],
            query={"text": workload.query},
            warmup=min(range(len(documents)), key=lambda i: len(documents[i])),
        ),
        Case(
            "rerank-images",
            "reranker",
            [{"image": p} for p in image_docs],
            query={"text": workload.query},
            warmup=min(range(len(image_docs)), key=lambda i: areas[image_docs[i]]),
            needs_shim=True,
        ),
        Case(
            "rerank-passages",
            "reranker",
            [{"text": d} for d in workload.passages],
            query={"text": workload.query},
            warmup=min(range(len(workload.passages)), key=lambda i: len(workload.passages[i])),
        ),
        Case(
            "rerank-image-query",
            "reranker",
            [{"text": d} for d in workload.passages],
            query={"image": workload.images[smallest_image + 1 if smallest_image == 0 else 0]},
            warmup=min(range(len(workload.passages)), key=lambda i: len(workload.passages[i])),
            needs_shim=True,
        ),
    ]


# -- the two implementations ---------------------------------------------------------------------
def prepare_environment() -> None:
    """One thread, import guards before any Qwen3-VL code, quiet transformers."""
    import torch

    torch.set_num_threads(1)
    from qvl_integrations._compat import ensure_torchvision, prepare_video_reader_backend

    ensure_torchvision()
    prepare_video_reader_backend()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _import_by_path(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        del sys.modules[name]
        hint = " (the reference reranker imports scipy)" if exc.name == "scipy" else ""
        raise SystemExit(f"importing the reference {path} failed: {exc}{hint}") from exc
    return module


def device_name() -> str:
    """The device the reference picks by itself (cuda when available), which ours then uses too."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Models:
    """Lazily loaded models of one implementation."""

    implementation: Implementation
    workload: Workload
    _embedder: Any = None
    _reranker: Any = None

    def embedder(self) -> Any:
        """The embedder of this implementation (loaded on first call)."""
        if self._embedder is None:
            if self.implementation == "reference":
                module = _import_by_path(
                    "qwen3_vl_embedding_reference", self.workload.embedding_file
                )
                import torch

                self._embedder = module.Qwen3VLEmbedder(
                    self.workload.embedding_checkpoint, dtype=torch.float32
                )
            else:
                from qvl_integrations import QwenVLEmbedder

                self._embedder = QwenVLEmbedder(
                    self.workload.embedding_checkpoint,
                    device=device_name(),
                    dtype="float32",
                )
                _ = self._embedder.loaded  # load now, not inside the first timed call
        return self._embedder

    def reranker(self) -> Any:
        """The reranker of this implementation (loaded on first call)."""
        if self._reranker is None:
            if self.implementation == "reference":
                module = _import_by_path("qwen3_vl_reranker_reference", self.workload.reranker_file)
                import torch

                self._reranker = module.Qwen3VLReranker(
                    self.workload.reranker_checkpoint, dtype=torch.float32
                )
            else:
                from qvl_integrations import QwenVLReranker

                self._reranker = QwenVLReranker(
                    self.workload.reranker_checkpoint, device=device_name(), dtype="float32"
                )
                _ = self._reranker.loaded
        return self._reranker

    def load_for(self, case: Case) -> None:
        """Load the model ``case`` needs."""
        _ = self.embedder() if case.role == "embedding" else self.reranker()


@contextlib.contextmanager
def tokenize_shim(reranker: Any) -> Iterator[None]:
    """Make the reference reranker's ``mm_token_type_ids`` a LongTensor, for this block only.

    The reference tokenises one pair at a time with ``padding=False`` and no
    truncation, then pads ``input_ids`` itself but leaves ``mm_token_type_ids``
    a Python list, which transformers 5.x cannot index for image/video pairs.
    With one unpadded row, the list converted as is has exactly the shape of
    ``input_ids``.
    """
    import torch

    original = reranker.tokenize

    def tokenize(pairs: list[dict[str, Any]], **kwargs: Any) -> Any:
        inputs = original(pairs, **kwargs)
        types = inputs.get("mm_token_type_ids")
        if types is not None and not isinstance(types, torch.Tensor):
            inputs["mm_token_type_ids"] = torch.as_tensor(types, dtype=torch.long)
        return inputs

    reranker.tokenize = tokenize
    try:
        yield
    finally:
        del reranker.tokenize  # back to the class's method


def reference_calls(case: Case, models: Models) -> dict[str, Callable[[], np.ndarray]]:
    """The reference's reasonable usages of ``case``, by description.

    Embedding: everything in one ``process`` call (as the reference batches:
    one padded batch), and, when there are more inputs than our batch size,
    ``process`` on consecutive chunks of our batch size. Reranking: one
    ``process`` call (the reference scores one pair per forward pass).
    """
    if case.role == "embedding":
        embedder = models.embedder()

        def embed(inputs: Sequence[dict[str, str]]) -> np.ndarray:
            return np.asarray(embedder.process(list(inputs)).float().cpu().numpy())

        calls: dict[str, Callable[[], np.ndarray]] = {
            "one process() call": lambda: embed(case.inputs)
        }
        if len(case.inputs) > BATCH_SIZE:
            calls[f"process() on chunks of {BATCH_SIZE}"] = lambda: np.concatenate(
                [
                    embed(case.inputs[i : i + BATCH_SIZE])
                    for i in range(0, len(case.inputs), BATCH_SIZE)
                ]
            )
        return calls

    reranker = models.reranker()
    request = {"query": case.query, "documents": case.inputs}

    def rerank() -> np.ndarray:
        with tokenize_shim(reranker) if case.needs_shim else contextlib.nullcontext():
            return np.asarray(reranker.process(request), dtype=np.float32)

    return {"one process() call (one pair per forward)": rerank}


def our_call(case: Case, models: Models) -> Callable[[], np.ndarray]:
    """Our public API on ``case``: ``embed(inputs)`` or ``score(query, documents)``."""
    if case.role == "embedding":
        embedder = models.embedder()
        return lambda: np.asarray(embedder.embed(case.inputs))
    reranker = models.reranker()
    assert case.query is not None
    query = case.query
    return lambda: np.asarray(reranker.score(query, case.inputs))


# -- memory --------------------------------------------------------------------------------------
def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            match = re.search(rf"^{field_name}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; Linux >= 4.0."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _rss_mib() -> float:
    kib = _proc_status_kib("VmRSS")
    if kib is not None:
        return kib / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure_peak(run: Callable[[], object]) -> tuple[float, str]:
    """Peak memory increase of one call of ``run`` over the memory just before it, in MiB.

    On CUDA: the peak of ``torch.cuda.memory_allocated`` over its value before
    the call. On the CPU: the kernel's peak RSS (``VmHWM``, reset just before
    the call) minus the RSS before it; without ``/proc`` the monotonic
    ``ru_maxrss`` is used instead, which can under-report.

    Returns:
        The increase and a description of the method.
    """
    import torch

    gc.collect()
    if device_name() == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        allocated = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - allocated) / 2**20, "CUDA allocated bytes"
    before_kib = _proc_status_kib("VmRSS")
    if before_kib is not None and _reset_peak_rss():
        run()
        peak_kib = _proc_status_kib("VmHWM") or before_kib
        return (peak_kib - before_kib) / 1024, "peak RSS (VmHWM reset) - RSS before"
    before = _rss_mib()
    run()
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / 2**20 if sys.platform == "darwin" else peak / 1024
    return max(0.0, peak_mib - before), "ru_maxrss - RSS before (may under-report)"


def memory_worker(spec_path: str) -> int:
    """Subprocess entry: load one side, warm it up on a small input, measure one run.

    Prints one JSON line: ``peak_mib``, ``load_mib`` (RSS growth of the model
    load) and ``method``.
    """
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    prepare_environment()
    workload = Workload(**spec["workload"])
    case = next(c for c in make_cases(workload) if c.name == spec["case"])
    models = Models(spec["implementation"], workload)
    before_load = _rss_mib()
    models.load_for(case)
    load_mib = _rss_mib() - before_load
    if spec["implementation"] == "reference":
        # One small input: every usage is the same single call.
        warm = next(iter(reference_calls(case.warmup_case(), models).values()))
        run = reference_calls(case, models)[spec["variant"]]
    else:
        warm = our_call(case.warmup_case(), models)
        run = our_call(case, models)
    warm()  # lazy imports and one-time set-up, on a small input
    peak, method = measure_peak(run)
    print(json.dumps({"peak_mib": peak, "load_mib": load_mib, "method": method}))
    return 0


def run_memory_worker(
    workload: Workload, case: Case, implementation: Implementation, variant: str, folder: Path
) -> dict[str, Any]:
    """Run :func:`memory_worker` in a fresh interpreter and return its report."""
    spec_path = folder / f"memory_{case.name}_{implementation}.json"
    spec = {
        "workload": dataclasses.asdict(workload),
        "case": case.name,
        "implementation": implementation,
        "variant": variant,
    }
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", str(spec_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"memory worker for {case.name}/{implementation} failed ({done.returncode}):\n"
            f"{done.stderr[-4000:]}"
        )
    report: dict[str, Any] = json.loads(lines[-1])
    return report


# -- timing and parity ---------------------------------------------------------------------------
@dataclass
class CaseResult:
    """Everything measured for one case."""

    name: str
    n_items: int
    reference_usage: str
    reference_s: float
    ours_s: float
    speedup: float
    max_abs_diff: float
    floor: float
    reference_runs_s: dict[str, list[float]]
    ours_runs_s: list[float]
    diff_by_usage: dict[str, float]
    ref_peak_mib: float | None = None
    ours_peak_mib: float | None = None
    ref_load_mib: float | None = None
    ours_load_mib: float | None = None
    memory_method: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def parity_ok(self) -> bool:
        """Whether every reference usage matches ours within :data:`TOLERANCE`."""
        return self.max_abs_diff <= TOLERANCE

    @property
    def floor_met(self) -> bool:
        """Whether the speed-up reaches the floor we aim at."""
        return self.speedup >= self.floor


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _max_abs_diff(reference: np.ndarray, ours: np.ndarray) -> float:
    if reference.shape != ours.shape:
        return math.inf
    return float(np.max(np.abs(reference.astype(np.float64) - ours.astype(np.float64))))


def compare_case(case: Case, reference: Models, ours: Models, repeats: int) -> CaseResult:
    """Warm up (and check parity on the warm-up outputs), then time alternating runs.

    Each repeat runs every reference usage and ours once, in alternating order
    (reference first on even repeats, ours first on odd ones).
    """
    ref_calls = reference_calls(case, reference)
    our_run = our_call(case, ours)
    ours_out = our_run()
    diffs = {usage: _max_abs_diff(run(), ours_out) for usage, run in ref_calls.items()}
    ref_runs: dict[str, list[float]] = {usage: [] for usage in ref_calls}
    our_runs: list[float] = []
    for repeat in range(repeats):
        order: list[tuple[str | None, Callable[[], np.ndarray]]] = [
            *ref_calls.items(),
            (None, our_run),
        ]
        if repeat % 2:
            order.reverse()
        for usage, run in order:
            elapsed = _timed(run)
            (our_runs if usage is None else ref_runs[usage]).append(elapsed)
    medians = {usage: statistics.median(runs) for usage, runs in ref_runs.items()}
    best = min(medians, key=lambda usage: medians[usage])
    ours_s = statistics.median(our_runs)
    return CaseResult(
        name=case.name,
        n_items=len(case.inputs),
        reference_usage=best,
        reference_s=medians[best],
        ours_s=ours_s,
        speedup=medians[best] / ours_s,
        max_abs_diff=max(diffs.values()),
        floor=FLOORS[case.name],
        reference_runs_s=ref_runs,
        ours_runs_s=our_runs,
        diff_by_usage=diffs,
    )


# -- report --------------------------------------------------------------------------------------
def _fmt_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


_LABELS = {
    "texts": "{n} texts",
    "images": "{n} images",
    "rerank-texts": "1 text query x {n} text docs",
    "rerank-images": "1 text query x {n} image docs",
    "rerank-passages": "1 text query x {n} short passages",
    "rerank-image-query": "1 image query x {n} short passages",
}


def _case_label(result: CaseResult) -> str:
    return f"{result.name} ({_LABELS[result.name].format(n=result.n_items)})"


def markdown_table(results: Sequence[CaseResult]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| case | reference s | ours s | speedup | ref peak MB | ours peak MB | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {_case_label(r)} | {r.reference_s:.4f} | {r.ours_s:.4f} | {r.speedup:.2f}x | "
            f"{_fmt_mib(r.ref_peak_mib)} | {_fmt_mib(r.ours_peak_mib)} | {r.max_abs_diff:.2e} |"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Versions and settings the numbers depend on."""
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device_name(),
        "torch_threads": torch.get_num_threads(),
        "dtype": "float32",
    }


# -- command line --------------------------------------------------------------------------------
def _reference_files(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.reference:
        folder = Path(args.reference) / REFERENCE_SUBDIR
    else:
        folder = Path(args.reference_files)
    files = (folder / EMBEDDING_FILE, folder / RERANKER_FILE)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"reference file(s) not found: {', '.join(missing)}")
    return files[0].resolve(), files[1].resolve()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Compare qvl_integrations with the authors' Qwen3-VL-Embedding reference code."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--reference",
        metavar="DIR",
        help="checkout of github.com/QwenLM/Qwen3-VL-Embedding (uses DIR/src/models/*.py)",
    )
    source.add_argument(
        "--reference-files",
        metavar="DIR",
        help=f"directory holding {EMBEDDING_FILE} and {RERANKER_FILE} directly",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="checkpoint for every case (default: a tiny random one built in a temp dir)",
    )
    parser.add_argument(
        "--reranker-checkpoint",
        metavar="DIR",
        help="checkpoint for the reranking cases (default: --checkpoint)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    parser.add_argument("--json", metavar="PATH", help="also write all results to PATH")
    parser.add_argument(
        "--skip-memory", action="store_true", help="do not measure peak memory (faster)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="NAME",
        help="run only these cases (default: all; see FLOORS for the names)",
    )
    parser.add_argument("--memory-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker is None and not (args.reference or args.reference_files):
        parser.error("one of --reference or --reference-files is required")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns 1 when a case's outputs differ by more than the tolerance."""
    args = parse_args(argv)
    if args.memory_worker is not None:
        return memory_worker(args.memory_worker)
    embedding_file, reranker_file = _reference_files(args)
    prepare_environment()
    with tempfile.TemporaryDirectory(prefix="qvl-compare-") as tmp:
        folder = Path(tmp)
        if args.checkpoint:
            checkpoint = str(Path(args.checkpoint).resolve())
            checkpoint_note = checkpoint
        else:
            from qvl_integrations.testing.tiny_checkpoint import build_tiny_checkpoint

            checkpoint = str(build_tiny_checkpoint(folder / "tiny-checkpoint"))
            checkpoint_note = "tiny random checkpoint (qvl_integrations.testing)"
        reranker_checkpoint = checkpoint
        if args.reranker_checkpoint:
            reranker_checkpoint = str(Path(args.reranker_checkpoint).resolve())
        media = folder / "media"
        media.mkdir()
        workload = make_workload(
            media,
            embedding_checkpoint=checkpoint,
            reranker_checkpoint=reranker_checkpoint,
            embedding_file=str(embedding_file),
            reranker_file=str(reranker_file),
            seed=args.seed,
        )
        print(f"checkpoint: {checkpoint_note}", file=sys.stderr)
        print(f"shim: {SHIM_NOTE}", file=sys.stderr)
        reference = Models("reference", workload)
        ours = Models("ours", workload)
        results: list[CaseResult] = []
        for case in make_cases(workload):
            if args.cases and case.name not in args.cases:
                continue
            print(f"timing {case.name} ...", file=sys.stderr)
            result = compare_case(case, reference, ours, args.repeats)
            if case.needs_shim:
                result.notes.append("reference tokenize shim applied")
            if not args.skip_memory:
                print(f"measuring peak memory of {case.name} ...", file=sys.stderr)
                ref_mem = run_memory_worker(
                    workload, case, "reference", result.reference_usage, folder
                )
                our_mem = run_memory_worker(workload, case, "ours", "", folder)
                result.ref_peak_mib = ref_mem["peak_mib"]
                result.ref_load_mib = ref_mem["load_mib"]
                result.ours_peak_mib = our_mem["peak_mib"]
                result.ours_load_mib = our_mem["load_mib"]
                result.memory_method = str(our_mem["method"])
            results.append(result)

    env = environment()
    print(
        f"\nQwen3-VL: reference vs qvl_integrations ({checkpoint_note}; {env['device']}, "
        f"float32, torch threads={env['torch_threads']}, torch {env['torch']}, "
        f"transformers {env['transformers']}; median of {args.repeats} alternating runs after "
        f"1 warm-up)\n"
    )
    print(markdown_table(results))
    print()
    print("Reference usage (the faster where there is a choice):")
    for r in results:
        print(f"- {r.name}: {r.reference_usage}")
    print(f"- Shim: {SHIM_NOTE}")
    method = next((r.memory_method for r in results if r.memory_method), None)
    if method:
        print(
            f"- Peak MB: one run per side in a fresh subprocess, after model load and a warm-up "
            f"on one small input: {method} (MiB)."
        )
    print(f"- Parity: max abs difference of vectors / scores, must be <= {TOLERANCE:g}.")
    print("\nFloors (speedup = reference s / ours s):")
    for r in results:
        verdict = "met" if r.floor_met else "NOT met"
        memory = ""
        if r.ref_peak_mib is not None and r.ours_peak_mib is not None:
            memory = "; peak memory " + (
                "no higher" if r.ours_peak_mib <= r.ref_peak_mib else "HIGHER than the reference"
            )
        print(f"- {r.name}: {r.speedup:.2f}x vs floor {r.floor:g}x: {verdict}{memory}")

    failed = [r.name for r in results if not r.parity_ok]
    if args.json:
        payload = {
            "environment": env,
            "checkpoint": checkpoint_note,
            "repeats": args.repeats,
            "tolerance": TOLERANCE,
            "shim": SHIM_NOTE,
            "parity_ok": not failed,
            "cases": [
                {**dataclasses.asdict(r), "parity_ok": r.parity_ok, "floor_met": r.floor_met}
                for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if failed:
        print(f"\nPARITY FAILED (> {TOLERANCE:g}): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
