"""Still images as patch rows, without the temporal copy.

Qwen3-VL's vision tower embeds patches of two frames (``temporal_patch_size``)
with a 3-D convolution whose kernel equals its stride. The image processor
therefore stacks every still image twice before cutting it into patches, and
the convolution multiplies both identical copies. Since
``w0 . x + w1 . x == (w0 + w1) . x``, we cut each image once and embed it with
the frame-summed kernel as one matrix product: half the pixel data, half the
arithmetic, the same embedding up to float rounding. Video patches (two
different frames) take the unchanged kernel, also as a matrix product.

:func:`install_patch_embedding` swaps the model's patch embedding for
:class:`PatchEmbedding`, which accepts both widths of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = ["PatchEmbedding", "PatchGeometry", "image_patches", "install_patch_embedding"]


@dataclass(frozen=True)
class PatchGeometry:
    """How the checkpoint's image processor normalises and cuts images."""

    patch: int
    merge: int
    scale: float
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_processor(cls, processor: Any) -> PatchGeometry:
        """Read the geometry and normalisation from a Qwen3-VL processor."""
        ip = processor.image_processor
        scale = float(ip.rescale_factor) if getattr(ip, "do_rescale", True) else 1.0
        if getattr(ip, "do_normalize", True):
            mean = np.asarray(ip.image_mean, dtype=np.float32)
            std = np.asarray(ip.image_std, dtype=np.float32)
        else:
            mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
        return cls(
            patch=int(ip.patch_size), merge=int(ip.merge_size), scale=scale, mean=mean, std=std
        )


def image_patches(image: Image.Image, geometry: PatchGeometry) -> tuple[torch.Tensor, list[int]]:
    """Normalised patch rows ``(h * w, 3 * patch * patch)`` and the grid ``[1, h, w]``.

    ``image`` must be RGB with sides that are multiples of ``patch * merge``
    (what the training recipe's resize produces). Rows come in the order the
    vision tower merges them: blocks of ``merge x merge`` neighbouring patches.
    """
    p, m = geometry.patch, geometry.merge
    pixels = np.asarray(image, dtype=np.float32)
    height, width = pixels.shape[:2]
    if height % (p * m) or width % (p * m):
        raise ValueError(f"image of {width}x{height} is not a multiple of {p * m}")
    pixels = (pixels * geometry.scale - geometry.mean) / geometry.std
    gh, gw = height // p, width // p
    blocks = pixels.reshape(gh // m, m, p, gw // m, m, p, 3)
    rows = blocks.transpose(0, 3, 1, 4, 6, 2, 5).reshape(gh * gw, 3 * p * p)
    return torch.from_numpy(np.ascontiguousarray(rows)), [1, gh, gw]


class PatchEmbedding(torch.nn.Module):
    """The vision tower's patch embedding as matrix products, for frames and frame pairs.

    Rows of width ``C * P * P`` are still images (frame-summed kernel); rows
    of width ``C * T * P * P`` are video patches (the original kernel). The
    products run in float32 and are cast to the model's dtype, so half
    precision models lose nothing to the summed kernel.
    """

    def __init__(self, original: Any) -> None:
        super().__init__()
        weight = original.proj.weight.detach().float()  # (out, C, T, P, P)
        out = weight.shape[0]
        self.embed_dim = int(original.embed_dim)
        self.dtype_out = original.proj.weight.dtype
        self.register_buffer("pair_weight", weight.reshape(out, -1), persistent=False)
        self.register_buffer("frame_weight", weight.sum(2).reshape(out, -1), persistent=False)
        bias = original.proj.bias
        self.register_buffer(
            "bias", None if bias is None else bias.detach().float(), persistent=False
        )

    pair_weight: torch.Tensor
    frame_weight: torch.Tensor
    bias: torch.Tensor | None

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.float()
        frame = rows.shape[-1] == self.frame_weight.shape[1]
        weight = self.frame_weight if frame else self.pair_weight
        return torch.nn.functional.linear(rows, weight, self.bias).to(self.dtype_out)


def install_patch_embedding(model: Any) -> None:
    """Replace ``model.visual.patch_embed`` (a ``Qwen3VLModel``) with :class:`PatchEmbedding`."""
    visual = model.visual
    if not isinstance(visual.patch_embed, PatchEmbedding):
        visual.patch_embed = PatchEmbedding(visual.patch_embed)
