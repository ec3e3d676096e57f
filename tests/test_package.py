"""Package-level guarantees: import direction, the torchvision guard, exact prompts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import make_image

from qvl_integrations import QwenVLEmbedder, QwenVLReranker, to_input
from qvl_integrations.core.prompts import embedding_conversation, rerank_conversation
from qvl_integrations.core.vision import prepare_media


def _run(code: str, *extra_path: Path) -> str:
    env_path = ":".join(str(p) for p in extra_path)
    prefix = f"import sys; sys.path[:0] = {env_path.split(':') if env_path else []!r}\n"
    result = subprocess.run(
        [sys.executable, "-c", prefix + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_core_imports_no_framework() -> None:
    out = _run(
        """
        import sys
        import qvl_integrations
        from qvl_integrations import QwenVLEmbedder, QwenVLReranker
        QwenVLEmbedder("some/checkpoint")
        print(sorted(m for m in sys.modules if m.startswith(("langchain", "llama_index"))))
        """
    )
    assert out.strip() == "[]"


def test_langchain_adapter_without_langchain_says_what_to_install() -> None:
    out = _run(
        """
        import sys
        sys.modules["langchain_core"] = None  # as if langchain-core were not installed
        from qvl_integrations.errors import MissingDependencyError
        try:
            import qvl_integrations.langchain
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert "pip install 'qvl-integrations[langchain]'" in out


def test_langchain_adapter_imports_no_llama_index() -> None:
    out = _run(
        """
        import sys
        from qvl_integrations.langchain import QwenVLEmbeddings, QwenVLRerank
        print(sorted(m for m in sys.modules if m.startswith("llama_index")))
        """
    )
    assert out.strip() == "[]"


def test_llama_index_adapter_without_llama_index_says_what_to_install() -> None:
    out = _run(
        """
        import sys
        sys.modules["llama_index"] = None  # as if llama-index-core were not installed
        sys.modules["llama_index.core"] = None
        from qvl_integrations.errors import MissingDependencyError
        try:
            import qvl_integrations.llama_index
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    assert "pip install 'qvl-integrations[llamaindex]'" in out


def test_llama_index_adapter_imports_no_langchain() -> None:
    out = _run(
        """
        import sys
        from qvl_integrations.llama_index import QwenVLEmbedding, QwenVLRerank
        print(sorted(m for m in sys.modules if m.startswith("langchain")))
        """
    )
    assert out.strip() == "[]"


def test_torchvision_guard_makes_transforms_importable() -> None:
    out = _run(
        """
        from qvl_integrations._compat import ensure_torchvision
        tv = ensure_torchvision()
        from torchvision.transforms import InterpolationMode
        import qwen_vl_utils
        from transformers import Qwen3VLForConditionalGeneration
        print(tv.__name__, InterpolationMode.BICUBIC.value)
        """
    )
    assert out.split() == ["torchvision", "bicubic"]


def test_torchvision_guard_is_a_no_op_when_import_works(tmp_path: Path) -> None:
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("transforms = 'fake transforms'\n")
    out = _run(
        """
        import torch
        from qvl_integrations import _compat
        tv = _compat.ensure_torchvision()
        print(tv.transforms, _compat._library is None, hasattr(torch.ops.torchvision, "nms"))
        """,
        tmp_path,
    )
    assert out.split() == ["fake", "transforms", "True", "False"]


def test_torchvision_guard_reraises_other_errors(tmp_path: Path) -> None:
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('something else broke')\n")
    out = _run(
        """
        from qvl_integrations import _compat
        try:
            _compat.ensure_torchvision()
        except RuntimeError as exc:
            print("raised", exc, _compat._library is None)
        """,
        tmp_path,
    )
    assert out.strip() == "raised something else broke True"


EMBED_PROMPT = (
    "<|im_start|>system\nFind animals.<|im_end|>\n"
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>a cat<|im_end|>\n"
    "<|im_start|>assistant\n"
)
RERANK_PROMPT = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n<Instruct>: Given a search query, retrieve relevant candidates that "
    "answer the query.<Query>:a cat\n<Document>:<|vision_start|><|image_pad|><|vision_end|>"
    "caption<|im_end|>\n<|im_start|>assistant\n"
)


def test_exact_embedding_prompt(embedder: QwenVLEmbedder) -> None:
    item = to_input({"text": "a cat", "image": make_image(40, 40)})
    media = prepare_media(item, embedder.vision)
    conversation = embedding_conversation(item, media, "Find animals.")
    rendered = embedder.loaded.processor.apply_chat_template(
        [conversation], add_generation_prompt=True, tokenize=False
    )[0]
    assert rendered == EMBED_PROMPT
    empty = to_input({})
    null = embedding_conversation(empty, prepare_media(empty, embedder.vision), "Represent.")
    assert null[1]["content"] == [{"type": "text", "text": "NULL"}]


def test_exact_rerank_prompt(reranker: QwenVLReranker) -> None:
    query = to_input("a cat")
    doc = to_input({"text": "caption", "image": make_image(40, 40)})
    conversation = rerank_conversation(
        query,
        prepare_media(query, reranker.vision),
        doc,
        prepare_media(doc, reranker.vision),
        reranker.instruction,
    )
    rendered = reranker.loaded.processor.apply_chat_template(
        [conversation], add_generation_prompt=True, tokenize=False
    )[0]
    assert rendered == RERANK_PROMPT


def test_repr_and_defaults(checkpoint: Path) -> None:
    emb = QwenVLEmbedder(checkpoint)
    assert "loaded=False" in repr(emb)
    assert emb.device.type == "cpu" and str(emb.dtype) == "torch.float32"
    assert emb.attn_implementation == "sdpa"


def _fake_torchcodec(root: Path, decoders_body: str) -> Path:
    package = root / "torchcodec"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "decoders.py").write_text(decoders_body)
    return root


@pytest.mark.parametrize(
    ("decoders_body", "expected"),
    [
        ("raise OSError('libnvrtc.so.13: cannot open')\n", "decord"),  # CUDA build on a CPU
        ("VideoDecoder = object\n", "None"),  # a torchcodec that loads is left alone
    ],
)
def test_torchcodec_guard(tmp_path: Path, decoders_body: str, expected: str) -> None:
    root = _fake_torchcodec(tmp_path, decoders_body)
    code = """
        import os
        os.environ.pop("FORCE_QWENVL_VIDEO_READER", None)
        from qvl_integrations import _compat
        _compat.prepare_video_reader_backend()
        print(os.environ.get("FORCE_QWENVL_VIDEO_READER"))
        """
    assert _run(code, root).strip() == expected
