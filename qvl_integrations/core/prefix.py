"""Running the tokens that every row of a batch shares only once.

Every reranking pair starts with the same system prompt, instruction and
query (its images and videos included). The batch's rows are tokenised in
full, so the shared prefix is found exactly, as the longest common run of
token ids, never guessed from text. That prefix goes through the model once,
with the query's vision tower; its keys and values are then repeated for the
rows, and only each row's own suffix (the document and the prompt tail) is
computed. Positions (multimodal RoPE included) are those of the full rows,
so the result equals the plain forward pass up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .encoding import EncodedBatch

__all__ = ["PrefixCache", "forward_last_with_prefix"]

#: Below this many shared tokens the extra forward pass does not pay off.
MIN_PREFIX_TOKENS = 16


@dataclass
class PrefixCache:
    """Keys and values of a computed prefix, reused across the batches of one call."""

    ids: torch.Tensor | None = None
    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


def _common_length(ids: torch.Tensor, lengths: list[int]) -> int:
    equal = (ids == ids[:1]).all(dim=0)
    limit = min(lengths) - 1  # every row keeps at least its last token to compute
    differing = torch.nonzero(~equal[:limit])
    return int(differing[0, 0]) if len(differing) else limit


def _reusable(cache: PrefixCache, ids: torch.Tensor, lengths: list[int]) -> bool:
    """Whether every row starts with the cached prefix and goes on past it."""
    if cache.ids is None or min(lengths) <= len(cache.ids):
        return False
    head = ids[:, : len(cache.ids)]
    return bool((head == cache.ids.to(ids.device)).all())


def _shared_length(
    ids: torch.Tensor, types: torch.Tensor, lengths: list[int], shared_visual: int
) -> int | None:
    """Length of the prefix all rows share, holding exactly the shared visual tokens."""
    if ids.shape[0] < 2:
        return None
    length = _common_length(ids, lengths)
    # The prefix must hold exactly the shared visual tokens: cut before any further ones.
    visual = torch.nonzero(types[0] != 0).flatten()
    if len(visual) > shared_visual:
        length = min(length, int(visual[shared_visual]))
    if shared_visual and (len(visual) < shared_visual or int(visual[shared_visual - 1]) >= length):
        return None
    # Never split between two visual tokens or right after one.
    while length > 0 and (types[0, length - 1] != 0 or types[0, length] != 0):
        length -= 1
    return length if length >= MIN_PREFIX_TOKENS else None


def _split_visual(
    tensors: dict[str, torch.Tensor],
    kind: str,
    per_row: list[int],
    shared: int,
    merge: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    """Split one modality's pixels into the prefix's (row 0's first ``shared``) and the rest."""
    grid_key = f"{kind}_grid_thw"
    pixel_key = "pixel_values" if kind == "image" else "pixel_values_videos"
    if grid_key not in tensors:
        return {}, {}, 0
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

    shared_tokens = sum(sizes[i] for i in prefix_items) // (merge * merge)
    return take(prefix_items), take(suffix_items), shared_tokens


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
        cache: Prefix reused from an earlier batch of the same call, updated here.

    Returns:
        ``(rows, hidden)`` states, or ``None`` when the rows share too little
        for the prefix to pay off (the caller then runs the plain pass). A
        single row uses the prefix cached by an earlier batch, if it has one.
    """
    device = next(model.parameters()).device
    tensors = {key: value.to(device) for key, value in encoded.tensors.items()}
    ids, types = tensors["input_ids"], tensors["mm_token_type_ids"]
    rows = ids.shape[0]
    merge = int(model.config.vision_config.spatial_merge_size)
    prefix_img, suffix_img, img_tokens = _split_visual(
        tensors, "image", images_per_row, shared_images, merge
    )
    prefix_vid, suffix_vid, vid_tokens = _split_visual(
        tensors, "video", videos_per_row, shared_videos, merge
    )
    if _reusable(cache, ids, encoded.lengths):
        assert cache.ids is not None
        length = len(cache.ids)
    else:
        found = _shared_length(ids, types, encoded.lengths, img_tokens + vid_tokens)
        if found is None:
            return None
        length = found

    if "image_grid_thw" in tensors or "video_grid_thw" in tensors:
        positions, _ = model.get_rope_index(
            ids, types, tensors.get("image_grid_thw"), tensors.get("video_grid_thw")
        )
    else:  # text only: every row counts 0, 1, 2, ...
        positions = torch.arange(ids.shape[1], device=ids.device).expand(3, rows, -1)
    text_config = model.config.text_config
    from transformers import DynamicCache

    if cache.ids is None or len(cache.ids) != length or not torch.equal(cache.ids, ids[0, :length]):
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
        cache.ids = ids[0, :length].clone()
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
    hidden: torch.Tensor = output.last_hidden_state
    last = torch.tensor(encoded.lengths, device=hidden.device) - 1 - length
    return hidden[torch.arange(rows, device=hidden.device), last]
