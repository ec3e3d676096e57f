"""Chat conversations for the embedding and reranking prompts.

These functions build the message lists that the checkpoint's chat template
renders. Media entries carry the already resized objects, so the same list
serves for rendering and for the processor.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .inputs import MultimodalInput
from .settings import EMPTY_INPUT_TEXT, RERANK_SYSTEM_PROMPT
from .vision import PreparedMedia

__all__ = ["embedding_conversation", "format_instruction", "rerank_conversation", "user_content"]

Message = dict[str, Any]


def format_instruction(instruction: str) -> str:
    """Strip an embedding instruction and end it with ``.`` unless it ends in punctuation.

    Example:
        >>> format_instruction("  Find the matching photo ")
        'Find the matching photo.'
        >>> format_instruction("What is shown?")
        'What is shown?'
    """
    text = instruction.strip()
    if text and not unicodedata.category(text[-1]).startswith("P"):
        text += "."
    return text


def user_content(item: MultimodalInput, media: PreparedMedia) -> list[Message]:
    """Content items of one input: videos, then images, then texts; ``NULL`` if empty."""
    if item.is_empty:
        return [{"type": "text", "text": EMPTY_INPUT_TEXT}]
    content: list[Message] = [{"type": "video", "video": v} for v in media.videos]
    content += [{"type": "image", "image": img} for img in media.images]
    content += [{"type": "text", "text": text} for text in item.texts]
    return content


def embedding_conversation(
    item: MultimodalInput, media: PreparedMedia, instruction: str
) -> list[Message]:
    """System turn with the (formatted) instruction, user turn with the input."""
    return [
        {"role": "system", "content": [{"type": "text", "text": instruction}]},
        {"role": "user", "content": user_content(item, media)},
    ]


def rerank_conversation(
    query: MultimodalInput,
    query_media: PreparedMedia,
    document: MultimodalInput,
    document_media: PreparedMedia,
    instruction: str,
) -> list[Message]:
    """The judge prompt: instruction, query and document in one user turn."""
    content: list[Message] = [
        {"type": "text", "text": "<Instruct>: " + instruction},
        {"type": "text", "text": "<Query>:"},
        *user_content(query, query_media),
        {"type": "text", "text": "\n<Document>:"},
        *user_content(document, document_media),
    ]
    return [
        {"role": "system", "content": [{"type": "text", "text": RERANK_SYSTEM_PROMPT}]},
        {"role": "user", "content": content},
    ]
