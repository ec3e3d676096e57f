"""Pure helpers: batching plan, truncation, instruction formatting, quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from qvl_integrations.core.batching import plan_batches, run_batches
from qvl_integrations.core.encoding import truncate_keeping_special
from qvl_integrations.core.prompts import format_instruction
from qvl_integrations.core.quantize import quantize
from qvl_integrations.errors import ConfigurationError, InputTooLongError


def test_plan_sorts_and_respects_count_and_budget() -> None:
    costs = [10, 500, 20, 480, 30, 5]
    batches = plan_batches(costs, batch_size=2, max_tokens=10_000, max_padding=2.0)
    assert batches == [[1, 3], [4, 2], [0, 5]]
    # 10 and 5 padded to 20 tokens is more than 1.3 x their 15 real tokens: split.
    assert plan_batches(costs, batch_size=2, max_tokens=10_000)[-2:] == [[0], [5]]
    assert sorted(i for b in batches for i in b) == list(range(6))
    budget = plan_batches(costs, batch_size=10, max_tokens=1000)
    for batch in budget:
        assert len(batch) == 1 or max(costs[i] for i in batch) * len(batch) <= 1000
    assert plan_batches([5000], batch_size=4, max_tokens=100) == [[0]]
    with pytest.raises(ConfigurationError):
        plan_batches([1], batch_size=0, max_tokens=10)


def test_run_batches_restores_order() -> None:
    out = np.zeros((4, 1))
    run_batches([[2, 0], [3, 1]], lambda b: np.array([[i * 10.0] for i in b]), out)
    assert out[:, 0].tolist() == [0.0, 10.0, 20.0, 30.0]


def test_truncation_keeps_special_and_tail() -> None:
    special = frozenset({1, 2})
    ids = [1, 5, 2, 2, 6, 7, 8, 9, 1, 30, 31, 32, 33, 34]
    keep = truncate_keeping_special(ids, 11, special)
    assert keep is not None and len(keep) == 11
    kept = [ids[k] for k in keep]
    assert kept[-5:] == ids[-5:]
    assert kept.count(1) == 2 and kept.count(2) == 2
    assert kept[:6] == [1, 5, 2, 2, 6, 1]  # ordinary tokens 7, 8, 9 went from the end of the body
    assert truncate_keeping_special(ids, 20, special) is None
    with pytest.raises(InputTooLongError):
        truncate_keeping_special([1] * 20 + [30] * 5, 10, special)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (" Find it ", "Find it."),
        ("Is it?", "Is it?"),
        ("Done.", "Done."),
        ("引用」", "引用」"),
        ("数え", "数え."),
    ],
)
def test_format_instruction(given: str, expected: str) -> None:
    assert format_instruction(given) == expected


def test_quantize_int8_clips_and_binary_packs() -> None:
    vectors = np.array([[1.0, -1.0, 0.5, -0.004, 0.0, 0.3, 0.2, 0.1, 0.9]], dtype=np.float32)
    np.testing.assert_array_equal(
        quantize(vectors, "int8"), [[127, -127, 64, -1, 0, 38, 25, 13, 114]]
    )
    assert quantize(vectors, "binary").tolist() == [[0b10100111, 0b10000000]]


def test_last_token_states_reads_each_rows_last_real_token() -> None:
    import torch

    from qvl_integrations.core.encoding import last_token_states

    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    picked = last_token_states(hidden, [2, 4])
    assert torch.equal(picked, torch.stack([hidden[0, 1], hidden[1, 3]]))


def test_image_ids_repeated_after_tokenising_equal_tokenising_the_repeats(
    embedder: object,
) -> None:
    from qvl_integrations.core.encoding import _expand_ids

    tokenizer = embedder.loaded.processor.tokenizer  # type: ignore[attr-defined]
    pad = "<|image_pad|>"
    pad_id = tokenizer.convert_tokens_to_ids(pad)
    template = "<|vision_start|>{}<|vision_end|>words around{}it<|vision_start|>{}<|vision_end|>"
    rows = ["no image here", template.format(pad, "", pad), template.format(pad, pad, pad)]
    counts = [3, 5, 2, 7, 1]
    ids = [list(x) for x in tokenizer(rows)["input_ids"]]
    _expand_ids(ids, pad_id, counts)
    expected_text = [
        rows[0],
        template.format(pad * 3, "", pad * 5),
        template.format(pad * 2, pad * 7, pad * 1),
    ]
    assert ids == [list(x) for x in tokenizer(expected_text)["input_ids"]]
