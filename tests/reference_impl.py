"""An independent, deliberately plain transcription of the model contract.

One input (or pair) per forward pass, straight from the contract text:
conversation dicts in the authors' style, qwen-vl-utils' ``process_vision_info``
for media, the processor for tokens, and for the reranker the *full* LM head
(all vocabulary logits) instead of the two-row shortcut. The package's code
shares none of these steps' implementation; tests compare the two.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qvl_integrations._compat import ensure_torchvision

IMAGE_FACTOR = 32
MIN_PIXELS = 4 * IMAGE_FACTOR * IMAGE_FACTOR
MAX_PIXELS = 1800 * IMAGE_FACTOR * IMAGE_FACTOR
TOTAL_PIXELS = 10 * 768 * IMAGE_FACTOR * IMAGE_FACTOR
RERANK_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)


def _content(text: Any = None, image: Any = None, video: Any = None) -> list[dict[str, Any]]:
    texts = [] if text is None else [text] if isinstance(text, str) else list(text)
    images = [] if image is None else image if isinstance(image, list) else [image]
    videos = [] if video is None else [video]
    if not texts and not images and not videos:
        return [{"type": "text", "text": "NULL"}]
    content: list[dict[str, Any]] = []
    for vid in videos:
        if isinstance(vid, list):
            frames = [f"file://{f}" if isinstance(f, (str, Path)) else f for f in vid]
            content.append({"type": "video", "video": frames, "total_pixels": TOTAL_PIXELS})
        else:
            # total_pixels on a video file is our documented deviation (the authors' code
            # leaves it unset and can overflow max_length); the rest is the authors' recipe.
            content.append(
                {
                    "type": "video",
                    "video": f"file://{vid}",
                    "fps": 1.0,
                    "max_frames": 64,
                    "total_pixels": TOTAL_PIXELS,
                }
            )
    for img in images:
        src = f"file://{img}" if isinstance(img, (str, Path)) else img
        content.append(
            {"type": "image", "image": src, "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
        )
    content += [{"type": "text", "text": t} for t in texts]
    return content


class Reference:
    """Unbatched embedding and reranking on one checkpoint."""

    def __init__(self, checkpoint: Path) -> None:
        ensure_torchvision()
        from qwen_vl_utils import process_vision_info
        from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

        self._vision = process_vision_info
        self.processor = AutoProcessor.from_pretrained(checkpoint)
        self.lm = Qwen3VLForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32)
        self.lm.eval()

    def _inputs(self, conversation: list[dict[str, Any]]) -> Any:
        text = self.processor.apply_chat_template(
            [conversation], add_generation_prompt=True, tokenize=False
        )
        images, videos, kwargs = self._vision(
            [conversation],
            image_patch_size=16,
            return_video_kwargs=True,
            return_video_metadata=True,
        )
        metadata = None
        if videos is not None:
            videos, metadata = (list(x) for x in zip(*videos, strict=True))
        return self.processor(
            text=text,
            images=images,
            videos=videos,
            video_metadata=metadata,
            do_resize=False,
            return_tensors="pt",
            **kwargs,
        )

    @torch.no_grad()
    def embed(
        self,
        text: Any = None,
        image: Any = None,
        video: Any = None,
        instruction: str | None = None,
    ) -> np.ndarray:
        if instruction:
            instruction = instruction.strip()
            if not unicodedata.category(instruction[-1]).startswith("P"):
                instruction += "."
        conversation = [
            {
                "role": "system",
                "content": [{"type": "text", "text": instruction or "Represent the user's input."}],
            },
            {"role": "user", "content": _content(text, image, video)},
        ]
        hidden = self.lm.model(**self._inputs(conversation)).last_hidden_state[0, -1]
        return torch.nn.functional.normalize(hidden, dim=-1).numpy()

    @torch.no_grad()
    def rerank(self, query: dict[str, Any], document: dict[str, Any], instruction: str) -> float:
        content = [
            {"type": "text", "text": "<Instruct>: " + instruction},
            {"type": "text", "text": "<Query>:"},
            *_content(**query),
            {"type": "text", "text": "\n<Document>:"},
            *_content(**document),
        ]
        conversation = [
            {"role": "system", "content": [{"type": "text", "text": RERANK_SYSTEM}]},
            {"role": "user", "content": content},
        ]
        logits = self.lm(**self._inputs(conversation)).logits[0, -1]
        vocab = self.processor.tokenizer.get_vocab()
        pair = torch.stack([logits[vocab["no"]], logits[vocab["yes"]]])
        return float(torch.softmax(pair, dim=0)[1])
