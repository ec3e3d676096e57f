"""A tiny, randomly initialised Qwen3-VL checkpoint for offline tests.

:func:`build_tiny_checkpoint` writes a complete Qwen3-VL checkpoint directory in about a
second, without network access: a byte-level BPE tokenizer trained on a short built-in
English text (saved as a ``Qwen2Tokenizer`` with Qwen's special tokens), a chat template
that renders like Qwen3-VL's, a ``Qwen3VLProcessor`` with Qwen3-VL's image and video
preprocessing settings, and float32 weights of a two-layer ``Qwen3VLForConditionalGeneration``.
Everything loads through the ordinary ``transformers`` classes without
``trust_remote_code``, and the same directory serves as a tiny embedding model and a tiny
reranker: ``Qwen3VLModel.from_pretrained`` and
``Qwen3VLForConditionalGeneration.from_pretrained`` both load its weights with no missing
keys. With untied embeddings (the default) the bare ``Qwen3VLModel`` has no LM head, so
``transformers`` reports the saved ``lm_head.weight`` as UNEXPECTED in its load report, as
it does for any untied Qwen3-VL checkpoint; ``tie_word_embeddings=True`` saves no LM head
and loads silently in both classes.

The weights are random: the model produces meaningless but deterministic outputs (the
same ``seed`` gives byte-identical files).

Example:
    >>> import tempfile
    >>> path = build_tiny_checkpoint(tempfile.mkdtemp())
    >>> from transformers import AutoProcessor, Qwen3VLForConditionalGeneration
    >>> processor = AutoProcessor.from_pretrained(path)
    >>> model = Qwen3VLForConditionalGeneration.from_pretrained(path)
    >>> type(processor).__name__
    'Qwen3VLProcessor'
    >>> model.config.text_config.hidden_size
    64
"""

from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import (
        PreTrainedTokenizerBase,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
    )

__all__ = ["SPECIAL_TOKENS", "TINY_CHAT_TEMPLATE", "build_tiny_checkpoint"]

#: Qwen's special tokens, in the order (and so with the relative ids) of the real
#: tokenizer. They are appended after the ordinary byte-level BPE vocabulary.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Words that must each be one ordinary (non-special) token.
_SINGLE_TOKEN_WORDS: tuple[str, ...] = ("yes", "no", "assistant", "user", "system")

# The pre-tokenization regex of transformers' Qwen2Tokenizer (and of Qwen's tiktoken BPE).
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_BPE_VOCAB_SIZE = 1024  # upper bound on the ordinary vocabulary (the corpus yields 762)
_VOCAB_MULTIPLE = 64  # the embedding matrix is padded to a multiple of this, as Qwen's is

#: A compact chat template that renders like Qwen3-VL's for conversations without tools:
#: a leading system message keeps only its text items (later system messages are dropped,
#: as in Qwen3-VL), user messages render images and videos as vision placeholders,
#: assistant messages keep only their text items, and ``add_generation_prompt`` opens an
#: assistant turn. ``add_vision_id`` prefixes "Picture N: " / "Video N: " like Qwen's.
TINY_CHAT_TEMPLATE = (
    "{%- set counts = namespace(images=0, videos=0) -%}\n"
    "{%- macro render(content, vision) -%}\n"
    "{%- if content is string -%}{{- content -}}\n"
    "{%- elif content is not none -%}{%- for item in content -%}\n"
    "{%- if vision and (item.type == 'image' or 'image' in item or 'image_url' in item) -%}\n"
    "{%- set counts.images = counts.images + 1 -%}\n"
    "{%- if add_vision_id -%}{{- 'Picture ' ~ counts.images ~ ': ' -}}{%- endif -%}\n"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}\n"
    "{%- elif vision and (item.type == 'video' or 'video' in item) -%}\n"
    "{%- set counts.videos = counts.videos + 1 -%}\n"
    "{%- if add_vision_id -%}{{- 'Video ' ~ counts.videos ~ ': ' -}}{%- endif -%}\n"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}\n"
    "{%- elif 'text' in item -%}{{- item.text -}}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}{%- endif -%}\n"
    "{%- endmacro -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message.role != 'system' or loop.first -%}\n"
    "{{- '<|im_start|>' + message.role + '\\n' -}}\n"
    "{{- render(message.content, message.role not in ('system', 'assistant')) -}}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"
)

# Training text for the tiny BPE. Chat-style lines put the role words and the reranker's
# answer words at the start of a line, where they pre-tokenize without a leading space.
_CORPUS = """\
system
You are a helpful assistant.
user
Describe this image in one sentence.
assistant
A small brown dog runs across a green field under a clear blue sky.
user
Is there a cat in the picture? Answer yes or no.
assistant
no
user
Does the video show a person riding a bicycle? Answer yes or no.
assistant
yes
system
Judge whether the Document meets the requirements based on the Query and the Instruct
provided. Note that the answer can only be "yes" or "no".
user
<Instruct>: Given a search query, retrieve relevant candidates that answer the query.
<Query>: What is the capital city of France?
<Document>: Paris is the capital and the most populous city of France.
assistant
yes
user
<Query>: How many legs does a spider have?
<Document>: The recipe needs two cups of flour, one egg and a pinch of salt.
assistant
no
system
Represent the user's input.
user
A photo of a red car parked next to an old stone building.
assistant
yes
no
yes
no
The quick brown fox jumps over the lazy dog. A picture is worth a thousand words, and a
short video can show what a long text cannot. Images, videos and text are encoded into
one shared space, where similar things lie close together and different things lie far
apart. The model reads the query, looks at the document, and decides whether they match.
Numbers such as 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 42 and 2025 appear in many documents.
Questions often begin with who, what, when, where, why or how, and answers are short.
The weather today is sunny with a light wind; tomorrow it may rain in the afternoon.
She opened the window, looked at the mountains, and wrote a letter to her friend.
Search engines rank pages by relevance, freshness and quality of the information.
"""


def _chat_lines() -> list[str]:
    """Return the training texts: the corpus plus emphasised single-token words."""
    words = "\n".join(_SINGLE_TOKEN_WORDS)
    return [_CORPUS] + [f"{words}\n"] * 8


def _train_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train the tiny byte-level BPE with Qwen2's pre-tokenization.

    Returns:
        The ordinary vocabulary (token to id, ids ``0..n-1``) and the merges in rank order.

    Raises:
        RuntimeError: One of the words that must be single tokens is not in the vocabulary.
    """
    import json

    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE

    bpe = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    bpe.train_from_iterator(_chat_lines(), trainer=trainer)
    model: dict[str, Any] = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    merges: list[tuple[str, str]] = []
    for merge in model["merges"]:  # ["a", "b"] pairs (older tokenizers wrote "a b" strings)
        first, second = merge.split(" ", 1) if isinstance(merge, str) else merge
        merges.append((first, second))
    missing = [word for word in _SINGLE_TOKEN_WORDS if word not in vocab]
    if missing:
        raise RuntimeError(f"tiny BPE did not learn single tokens for {missing}")
    return vocab, merges


def _build_tokenizer() -> PreTrainedTokenizerBase:
    """Build the tiny ``Qwen2Tokenizer`` with Qwen's special tokens after the BPE vocabulary."""
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe()
    first_special = len(vocab)
    for offset, token in enumerate(SPECIAL_TOKENS):
        vocab[token] = first_special + offset
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # v5 wants (a, b) tuples despite the hint
        unk_token=None,  # type: ignore[arg-type]
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[token for token in SPECIAL_TOKENS if token != "<|endoftext|>"],
        add_prefix_space=False,
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        model_max_length=262144,
        chat_template=TINY_CHAT_TEMPLATE,
    )


def _build_processor(tokenizer: PreTrainedTokenizerBase) -> Qwen3VLProcessor:
    """Wrap the tokenizer with Qwen3-VL's image and video preprocessing settings."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    shared: dict[str, Any] = {
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 65536, "longest_edge": 16777216}, **shared
    )
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": 4096, "longest_edge": 25165824},
        fps=2,
        min_frames=4,
        max_frames=768,
        **shared,
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=TINY_CHAT_TEMPLATE,
    )


def _build_config(
    tokenizer: PreTrainedTokenizerBase, *, tie_word_embeddings: bool
) -> Qwen3VLConfig:
    """Build the tiny Qwen3-VL configuration matching ``tokenizer``."""
    from transformers import Qwen3VLConfig

    def token_id(token: str) -> int:
        value = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(value, int):
            raise RuntimeError(f"token {token!r} has no single id")
        return value

    vocab_size = -(-len(tokenizer) // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE
    endoftext, im_end = token_id("<|endoftext|>"), token_id("<|im_end|>")
    text_config: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "initializer_range": 0.02,
        "attention_bias": False,
        # Interleaved M-RoPE over head_dim / 2 = 16 frequencies, split T/H/W like
        # Qwen3-VL's [24, 20, 20] over 64.
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5_000_000.0,
            "mrope_section": [6, 5, 5],
            "mrope_interleaved": True,
        },
        "bos_token_id": endoftext,
        "eos_token_id": im_end,
        "dtype": "float32",
    }
    vision_config: dict[str, Any] = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "hidden_act": "gelu_pytorch_tanh",
        "in_channels": 3,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 64,
        "num_position_embeddings": 256,  # a 16 x 16 learned grid, interpolated per image
        "deepstack_visual_indexes": [0],
        "initializer_range": 0.02,
        "dtype": "float32",
    }
    return Qwen3VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=tie_word_embeddings,
        dtype="float32",
    )


def _build_model(config: Qwen3VLConfig, *, seed: int) -> Qwen3VLForConditionalGeneration:
    """Randomly initialise the model from ``seed`` without touching the global RNG state."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # same float32 values whatever the caller's default
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen3VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.to(dtype=torch.float32)  # type: ignore[call-arg]
    model.eval()
    return model


def build_tiny_checkpoint(
    path: str | os.PathLike[str], *, seed: int = 0, tie_word_embeddings: bool = False
) -> pathlib.Path:
    r"""Write a tiny random Qwen3-VL checkpoint (model, tokenizer, processor) into ``path``.

    The directory loads offline through ``AutoProcessor``, ``AutoTokenizer``,
    ``Qwen3VLProcessor``, ``Qwen3VLForConditionalGeneration`` and ``Qwen3VLModel`` (the
    saved state dict is the conditional-generation one, so the bare model loads its trunk
    from the same files). The text model has 2 layers of width 64 and the vision tower 2
    blocks of width 32 with 16-pixel patches; weights are float32.

    Args:
        path: Directory to write into; created if missing, existing files are overwritten.
        seed: Seed of the random weight initialisation. The same seed gives the same files.
        tie_word_embeddings: Tie the LM head to the input embeddings. Then no
            ``lm_head.weight`` is saved and ``Qwen3VLModel`` loads without the UNEXPECTED
            ``lm_head.weight`` entry in transformers' load report.

    Returns:
        The checkpoint directory as a :class:`pathlib.Path`.

    Example:
        >>> import tempfile
        >>> path = build_tiny_checkpoint(tempfile.mkdtemp(), seed=1)
        >>> from transformers import AutoTokenizer
        >>> tokenizer = AutoTokenizer.from_pretrained(path)
        >>> tokenizer.convert_ids_to_tokens(tokenizer("<|im_start|>assistant\n").input_ids)
        ['<|im_start|>', 'assistant', 'Ċ']
    """
    from qvl_integrations._compat import ensure_torchvision

    ensure_torchvision()
    out = pathlib.Path(path)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    config = _build_config(tokenizer, tie_word_embeddings=tie_word_embeddings)
    model = _build_model(config, seed=seed)

    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.bos_token_id = endoftext
    model.generation_config.eos_token_id = [im_end, endoftext]
    model.generation_config.pad_token_id = endoftext

    from transformers.utils import logging as hf_logging

    progress_bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar for a one-file save
    try:
        model.save_pretrained(out)
        processor.save_pretrained(out)
    finally:
        if progress_bars:
            hf_logging.enable_progress_bar()
    return out
