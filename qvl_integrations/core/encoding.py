"""From conversations to model tensors: render, tokenise, truncate, pad.

The checkpoint's own chat template renders the prompt (once per shape, see
:mod:`.template`) and its processor expands video placeholders and builds
video pixels, so prompts are byte-for-byte those of the reference. What we do differently:

* Still images are cut into patch rows by :mod:`.pixels` (once, not twice)
  and their placeholders expanded here, with the processor's own token.

* Truncation never cuts a special token (which includes every visual
  placeholder) nor the prompt tail, so the pooled token stays the last
  prompt token. Ordinary tokens are dropped from the end of the body.
* Padding is ours: on the right, only as far as the longest row of the
  batch, and without an attention mask (see :func:`encode_conversations`).
  The result of a row is read at its own last token (:func:`last_token_states`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputTooLongError, UnsupportedInputError
from .pixels import PatchGeometry, image_patches
from .settings import PROMPT_TAIL_TOKENS
from .template import render_prompts
from .vision import PreparedVideo

__all__ = [
    "EncodedBatch",
    "TokenRules",
    "encode_conversations",
    "last_token_states",
    "truncate_keeping_special",
]


@dataclass(frozen=True)
class TokenRules:
    """Checkpoint facts the encoding needs: padding, special tokens, image geometry."""

    pad_id: int
    special_ids: frozenset[int]
    geometry: PatchGeometry


@dataclass
class EncodedBatch:
    """Tensors for one forward pass, plus the unpadded length of each row."""

    tensors: dict[str, torch.Tensor]
    lengths: list[int]


def truncate_keeping_special(
    ids: Sequence[int], max_length: int, special_ids: frozenset[int]
) -> list[int] | None:
    """Indices of the tokens kept when ``ids`` must fit ``max_length``.

    The last ``PROMPT_TAIL_TOKENS`` tokens and every special token are kept;
    ordinary tokens are dropped from the end of the body. Returns ``None``
    when nothing needs to go.

    Raises:
        InputTooLongError: the kept tokens alone exceed ``max_length``.

    Example:
        >>> truncate_keeping_special([1, 9, 8, 7, 2, 3, 4, 5, 6], 8, frozenset({1}))
        [0, 1, 2, 4, 5, 6, 7, 8]
    """
    n = len(ids)
    if n <= max_length:
        return None
    body = n - PROMPT_TAIL_TOKENS
    n_special = sum(1 for token in ids[:body] if token in special_ids)
    budget = max_length - PROMPT_TAIL_TOKENS - n_special
    if budget < 0:
        raise InputTooLongError(
            f"needs {n_special + PROMPT_TAIL_TOKENS} special and visual tokens, more than "
            f"max_length={max_length}; lower the image/video pixel budget or raise max_length"
        )
    keep: list[int] = []
    for position in range(body):
        if ids[position] in special_ids:
            keep.append(position)
        elif budget > 0:
            keep.append(position)
            budget -= 1
    keep.extend(range(body, n))
    return keep


def _expand_placeholders(texts: Sequence[str], token: str, replacements: list[str]) -> list[str]:
    """Replace the k-th ``token`` across ``texts`` by ``replacements[k]``.

    Raises:
        UnsupportedInputError: a row holds more placeholders than media (the
            reserved token was typed into a text); ``index`` is the row.
    """
    pending = iter(replacements)
    expanded = []
    for row, text in enumerate(texts):
        pieces = text.split(token)
        out = [pieces[0]]
        for piece in pieces[1:]:
            replacement = next(pending, None)
            if replacement is None:
                raise UnsupportedInputError(f"a text contains the reserved token {token!r}").at(row)
            out.append(replacement)
            out.append(piece)
        expanded.append("".join(out))
    return expanded


def _expand_ids(rows: list[list[int]], token_id: int, counts: Sequence[int]) -> None:
    """Repeat the k-th ``token_id`` across ``rows`` ``counts[k]`` times, in place.

    Tokenising one placeholder per image and repeating its id afterwards gives
    the same ids as tokenising the repeated placeholder text (it is an added
    token, never merged with its neighbours), without the tokenizer walking
    hundreds of copies per image.
    """
    pending = iter(counts)
    for r, ids in enumerate(rows):
        if token_id not in ids:
            continue
        out: list[int] = []
        start = 0
        while True:
            try:
                at = ids.index(token_id, start)
            except ValueError:
                break
            out.extend(ids[start:at])
            out.extend([token_id] * next(pending))
            start = at + 1
        out.extend(ids[start:])
        rows[r] = out


def _collect_media(
    conversations: Sequence[list[dict[str, Any]]],
) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    images: list[Any] = []
    videos: list[Any] = []
    metadata: list[dict[str, Any]] = []
    for conversation in conversations:
        for message in conversation:
            for part in message["content"]:
                if part["type"] == "image":
                    images.append(part["image"])
                elif part["type"] == "video":
                    video: PreparedVideo = part["video"]
                    videos.append(video.frames)
                    metadata.append(video.metadata)
    return images, videos, metadata


def encode_conversations(
    processor: Any,
    conversations: Sequence[list[dict[str, Any]]],
    *,
    rules: TokenRules,
    max_length: int,
    known_patches: Mapping[int, tuple[torch.Tensor, list[int]]] | None = None,
) -> EncodedBatch:
    """Render, tokenise, truncate and right-pad a batch of conversations.

    ``known_patches`` maps ``id(image)`` to that image's already cut patches
    (:func:`image_patches`), for images that recur in every row, such as a
    reranking query's. The caller keeps those images alive, so their ids
    cannot be taken by another object meanwhile.

    Raises:
        InputTooLongError: for the first row that cannot fit (``index`` is
            the row's position in ``conversations``).
    """
    texts = render_prompts(processor, conversations)
    images, videos, metadata = _collect_media(conversations)
    # Still images are cut by us (see .pixels); their placeholders expanded here.
    known = known_patches or {}
    patches = [
        known[id(image)] if id(image) in known else image_patches(image, rules.geometry)
        for image in images
    ]
    merge = rules.geometry.merge
    image_counts = [h * w // merge**2 for _, (_, h, w) in patches]
    # One placeholder per image for now (this also rejects typed-in ones); its id is
    # repeated to the image's token count after tokenisation.
    one_each = [processor.image_token] * len(images)
    texts = _expand_placeholders(texts, processor.image_token, one_each)
    image_tensors: dict[str, torch.Tensor] = {}
    if images:
        image_tensors = {
            "pixel_values": torch.cat([rows for rows, _ in patches]),
            "image_grid_thw": torch.tensor([grid for _, grid in patches], dtype=torch.long),
        }
    video_tensors: dict[str, torch.Tensor] = {}
    if not videos:
        texts = _expand_placeholders(texts, processor.video_token, [])  # rejects typed-in ones
    else:
        options: dict[str, Any] = {}
        if hasattr(processor.video_processor, "cap_pixels_per_frame"):
            # Only steers resizing, which is off here; passing it silences a warning.
            options["cap_pixels_per_frame"] = False
        processed = processor.video_processor(
            videos=videos,
            video_metadata=metadata,
            do_resize=False,
            do_sample_frames=False,
            return_metadata=True,
            return_tensors="pt",
            **options,
        )
        # The processor's own placeholder text (per-frame timestamps included).
        video_tokens = [
            processor.replace_video_token(processed, video_idx=i) for i in range(len(videos))
        ]
        texts = _expand_placeholders(texts, processor.video_token, video_tokens)
        video_tensors = {
            "pixel_values_videos": torch.as_tensor(processed["pixel_values_videos"]),
            "video_grid_thw": torch.as_tensor(processed["video_grid_thw"]),
        }
    token_ids = processor.tokenizer(texts, return_attention_mask=False)["input_ids"]
    rows: list[list[int]] = [list(ids) for ids in token_ids]
    if images:
        _expand_ids(rows, processor.image_token_id, image_counts)
    for row, ids in enumerate(rows):
        try:
            keep = truncate_keeping_special(ids, max_length, rules.special_ids)
        except InputTooLongError as exc:
            exc.at(row)
            raise
        if keep is not None:
            rows[row] = [ids[k] for k in keep]

    lengths = [len(ids) for ids in rows]
    width = max(lengths)
    input_ids = torch.full((len(rows), width), rules.pad_id, dtype=torch.long)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    # Modality of each token, as the processor marks it: text 0, image 1, video 2.
    token_types = (input_ids == processor.image_token_id).long()
    token_types += 2 * (input_ids == processor.video_token_id).long()

    # Padding goes on the right and no attention mask is passed: under causal attention a
    # real token only sees earlier, real tokens, so trailing padding cannot reach it, and
    # the rows keep the positions they have alone. This lets SDPA take its fused causal
    # path instead of materialising a padded mask.
    tensors: dict[str, torch.Tensor] = {"input_ids": input_ids, "mm_token_type_ids": token_types}
    tensors.update(image_tensors)
    tensors.update(video_tensors)
    return EncodedBatch(tensors=tensors, lengths=lengths)


def last_token_states(hidden: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """Each row's hidden state at its last real (non-padding) token."""
    last = torch.tensor(lengths, device=hidden.device) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
