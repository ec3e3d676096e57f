"""Running the tokens that every row of a batch shares only once.

Every reranking pair starts with the same system prompt, instruction and
query (its images and videos included). The shared prefix is found exactly,
as the longest common run of token ids of two probe pairs (the query with two
different one-token documents), never guessed from text; a batch uses it only
when each of its fully tokenised rows really starts with it. The prefix goes
through the model once, with the query's vision tower; its keys and values
are then repeated for the rows, and only each row's own suffix (the document
and the prompt tail) is computed. Positions (multimodal RoPE included) are those of the full rows,
so the result equals the plain forward pass up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .encoding import EncodedBatch, last_token_states

__all__ = ["PrefixCache", "find_shared_prefix", "forward_last_with_prefix"]

#: Below this many shared tokens the extra forward pass does not pay off.
MIN_PREFIX_TOKENS = 16
#: Nor when the prefix is shorter than this fraction of the rows' own (suffix) tokens.
MIN_PREFIX_SHARE = 0.5


@dataclass
class PrefixCache:
    """The prefix of one reranking call: its token ids, and keys/values once computed."""

    ids: torch.Tensor | None = None
    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    #: Whether the prefix holds visual tokens (the query's images or videos).
    has_media: bool = False


def find_shared_prefix(probe: EncodedBatch) -> PrefixCache:
    """The prefix shared by two probe rows: the same query with two different documents.

    The probes' documents are text only, so the common run holds exactly the
    query's visual tokens. It never ends inside or right after a visual run.
    Returns an empty cache when the prefix is too short to be worth it.
    """
    ids, types = probe.tensors["input_ids"], probe.tensors["mm_token_type_ids"]
    limit = min(probe.lengths) - 1
    differing = torch.nonzero(ids[0, :limit] != ids[1, :limit])
    length = int(differing[0, 0]) if len(differing) else limit
    while length > 0 and (types[0, length - 1] != 0 or types[0, length] != 0):
        length -= 1
    if length < MIN_PREFIX_TOKENS:
        return PrefixCache()
    return PrefixCache(ids=ids[0, :length].clone(), has_media=bool(types[0, :length].any()))


def _applies(cache: PrefixCache, ids: torch.Tensor, lengths: list[int]) -> bool:
    """Whether every row starts with the prefix, goes on past it, and shares enough.

    A prefix with visual tokens always pays: reusing it saves the vision tower
    on the query's media for every row. A text-only prefix must be long enough
    next to the rows' own tokens, as the cached pass needs an explicit
    (materialised) mask where the plain causal pass needs none.
    """
    if cache.ids is None:
        return False
    length = len(cache.ids)
    if min(lengths) <= length:
        return False
    average_suffix = sum(lengths) / len(lengths) - length
    if not cache.has_media and length < MIN_PREFIX_SHARE * average_suffix:
        return False
    return bool((ids[:, :length] == cache.ids.to(ids.device)).all())


def _split_visual(
    tensors: dict[str, torch.Tensor],
    kind: str,
    per_row: list[int],
    shared: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split one modality's pixels into the prefix's (row 0's first ``shared``) and the rest."""
    grid_key = f"{kind}_grid_thw"
    pixel_key = "pixel_values" if kind == "image" else "pixel_values_videos"
    if grid_key not in tensors:
        return {}, {}
    grids = tensors[grid_key]
    pixels = tensors[pixel_key]
    sizes = grids.prod(-1).tolist()
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    prefix_items, suffix_items = [], []
    item = 0
    for row, count in enumerate(per_row):
        for position in range(count):
            if position < shared:
                if row == 0:
                    prefix_items.append(item)
            else:
                suffix_items.append(item)
            item += 1

    def take(items: list[int]) -> dict[str, torch.Tensor]:
        if not items:
            return {}
        return {
            pixel_key: torch.cat([pixels[starts[i] : starts[i + 1]] for i in items]),
            grid_key: grids[items],
        }

    return take(prefix_items), take(suffix_items)


def forward_last_with_prefix(
    model: Any,
    encoded: EncodedBatch,
    *,
    images_per_row: list[int],
    videos_per_row: list[int],
    shared_images: int,
    shared_videos: int,
    cache: PrefixCache,
) -> torch.Tensor | None:
    """Last-token hidden states of each row, computing the shared prefix once.

    Args:
        model: The ``Qwen3VLModel`` trunk.
        encoded: The batch, right-padded, rows tokenised in full.
        images_per_row: Images in each row, shared ones first.
        videos_per_row: Videos in each row, shared ones first.
        shared_images: How many leading images every row shares (the query's).
        shared_videos: How many leading videos every row shares.
        cache: The call's prefix (:func:`find_shared_prefix`); its keys and
            values are computed by the first batch that uses it.

    Returns:
        ``(rows, hidden)`` states, or ``None`` when the prefix does not apply
        or would not pay off (the caller then runs the plain pass).
    """
    device = next(model.parameters()).device
    tensors = {key: value.to(device) for key, value in encoded.tensors.items()}
    ids, types = tensors["input_ids"], tensors["mm_token_type_ids"]
    if not _applies(cache, ids, encoded.lengths):
        return None
    assert cache.ids is not None
    rows, length = ids.shape[0], len(cache.ids)
    prefix_img, suffix_img = _split_visual(tensors, "image", images_per_row, shared_images)
    prefix_vid, suffix_vid = _split_visual(tensors, "video", videos_per_row, shared_videos)
    if "image_grid_thw" in tensors or "video_grid_thw" in tensors:
        positions, _ = model.get_rope_index(
            ids, types, tensors.get("image_grid_thw"), tensors.get("video_grid_thw")
        )
    else:  # text only: every row counts 0, 1, 2, ...
        positions = torch.arange(ids.shape[1], device=ids.device).expand(3, rows, -1)
    text_config = model.config.text_config
    from transformers import DynamicCache

    if not cache.layers:
        fresh = DynamicCache(config=text_config)
        model(
            input_ids=ids[:1, :length],
            mm_token_type_ids=types[:1, :length],
            position_ids=positions[:, :1, :length],
            past_key_values=fresh,
            use_cache=True,
            **prefix_img,
            **prefix_vid,
        )
        layers: list[Any] = list(fresh.layers)
        cache.layers = [(layer.keys, layer.values) for layer in layers]

    past = DynamicCache(config=text_config)
    for index, (keys, values) in enumerate(cache.layers):
        past.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
    output = model(
        input_ids=ids[:, length:],
        mm_token_type_ids=types[:, length:],
        position_ids=positions[:, :, length:],
        past_key_values=past,
        use_cache=True,
        **suffix_img,
        **suffix_vid,
    )
    return last_token_states(output.last_hidden_state, [n - length for n in encoded.lengths])
