"""One batching routine for the embedder and the reranker.

Each item's cost (text tokens plus visual tokens) is measured before any
forward pass; items are sorted by cost so that rows of similar length share
a batch, batches are cut by count and by a padded-token budget, and results
are written back at the caller's positions. Only one batch of media is in
memory at a time, so long jobs stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigurationError

__all__ = ["plan_batches", "run_batches"]

#: Padded tokens allowed per real token in a batch: beyond this, a new batch is cheaper.
DEFAULT_MAX_PADDING = 1.3


def plan_batches(
    costs: Sequence[int],
    *,
    batch_size: int,
    max_tokens: int,
    max_padding: float = DEFAULT_MAX_PADDING,
) -> list[list[int]]:
    """Group item indices into batches, longest first.

    A batch holds at most ``batch_size`` items; padded to its longest item it
    holds at most ``max_tokens`` tokens and at most ``max_padding`` times the
    tokens its items really have. An item costlier than ``max_tokens`` runs
    alone.

    Example:
        >>> plan_batches([5, 100, 7, 90], batch_size=2, max_tokens=1000)
        [[1, 3], [2, 0]]
    """
    if batch_size < 1 or max_tokens < 1 or max_padding < 1:
        raise ConfigurationError("batch_size and max_tokens must be >= 1, max_padding >= 1.0")
    order = sorted(range(len(costs)), key=lambda i: -costs[i])
    batches: list[list[int]] = []
    current: list[int] = []
    widest = real = 0
    for index in order:
        cost = max(int(costs[index]), 1)
        if current:
            padded = max(widest, cost) * (len(current) + 1)
            if (
                len(current) >= batch_size
                or padded > max_tokens
                or padded > max_padding * (real + cost)
            ):
                batches.append(current)
                current, widest, real = [], 0, 0
        current.append(index)
        widest = max(widest, cost)
        real += cost
    if current:
        batches.append(current)
    return batches


def run_batches(
    batches: Sequence[Sequence[int]],
    compute: Callable[[Sequence[int]], np.ndarray],
    out: np.ndarray,
    *,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Run ``compute`` on each batch and store row ``k`` of its result at ``batch[k]``.

    Args:
        batches: Item indices per batch (from :func:`plan_batches`).
        compute: Returns one result row per index, in the order given.
        out: Preallocated result array, first axis = items.
        progress: Called with the number of items finished after each batch.
    """
    for batch in batches:
        rows = compute(batch)
        if len(rows) != len(batch):
            raise RuntimeError(f"batch of {len(batch)} items gave {len(rows)} results")
        out[np.asarray(batch, dtype=np.int64)] = rows
        if progress is not None:
            progress(len(batch))
    return out
