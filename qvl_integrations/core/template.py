"""Rendering prompts through the chat template once per conversation shape.

Rendering a Jinja chat template costs as much per prompt as tokenising it.
Every prompt of a call has one of a few *shapes* (the roles and the kinds of
content items, in order); the texts are what differ. A shape is rendered once
with a unique marker in place of each text, which splits the output into the
fixed pieces around the texts; each prompt of that shape is then those pieces
joined with its own texts.

That equals the template's own rendering when the template writes texts
verbatim and does not branch on them, as Qwen3-VL's does for the system and
user turns we build. It is checked, not assumed, for each shape:

* the shape is rendered twice, once with bare markers and once with markers
  wrapped in what templates commonly act on (surrounding whitespace and
  newlines, ``& < > ' "``, upper and lower case, ``<think>`` tags, chat
  special tokens); both renderings must hold every marker verbatim, in order,
  and split into the same fixed pieces, so a template that trims, escapes,
  changes case or branches on such content is caught;
* the first prompt of the shape is also rendered by the template and compared.

A shape failing any check is rendered by the template from then on.

Example:
    >>> shape_of([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    (('user', ('text',)),)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["render_prompts", "shape_of"]

Shape = tuple[tuple[str, tuple[str, ...]], ...]

_MARK = "\ue000{}\ue001"  # private-use code points: never in a template or a prompt piece
#: Content that templates commonly transform or test, wrapped around the second probe's markers.
_BAIT = (
    " \n\t <think>Aa & <b>'\"</b> {{x}} <|im_end|>\n",
    " </think> Zz <tool_call> \n ",
)

#: Per processor: shape -> the fixed pieces around its texts, or None (render in full).
_CACHES: weakref.WeakKeyDictionary[Any, dict[Shape, list[str] | None]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def shape_of(conversation: Sequence[dict[str, Any]]) -> Shape:
    """The roles and content kinds of a conversation, without the texts or media."""
    return tuple(
        (message["role"], tuple(part["type"] for part in message["content"]))
        for message in conversation
    )


def _texts(conversation: Sequence[dict[str, Any]]) -> list[str]:
    return [
        part["text"]
        for message in conversation
        for part in message["content"]
        if part["type"] == "text"
    ]


def _render(processor: Any, conversations: list[list[dict[str, Any]]]) -> list[str]:
    rendered = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=False
    )
    return [rendered] if isinstance(rendered, str) else list(rendered)


def _with_texts(conversation: Sequence[dict[str, Any]], texts: list[str]) -> list[dict[str, Any]]:
    """The conversation's shape with ``texts`` in its text items (media items left empty)."""
    pending = iter(texts)
    return [
        {
            "role": message["role"],
            "content": [
                {"type": "text", "text": next(pending)}
                if part["type"] == "text"
                else {"type": part["type"], part["type"]: None}
                for part in message["content"]
            ],
        }
        for message in conversation
    ]


def _split(text: str, markers: list[str]) -> list[str] | None:
    """``text`` cut at each marker in turn, or ``None`` if one is missing or out of order."""
    pieces = []
    start = 0
    for marker in markers:
        at = text.find(marker, start)
        if at < 0:
            return None
        pieces.append(text[start:at])
        start = at + len(marker)
    pieces.append(text[start:])
    return pieces


def _pieces(processor: Any, conversation: Sequence[dict[str, Any]]) -> list[str] | None:
    """The fixed pieces of ``conversation``'s shape, or ``None`` if texts are not verbatim."""
    count = len(_texts(conversation))
    bare = [_MARK.format(k) for k in range(count)]
    baited = [_BAIT[0] + marker + _BAIT[1] for marker in bare]
    try:
        plain, wrapped = _render(
            processor, [_with_texts(conversation, bare), _with_texts(conversation, baited)]
        )
    except Exception:  # noqa: BLE001 - a template that needs real media: render in full
        return None
    pieces = _split(plain, bare)
    if pieces is None or pieces != _split(wrapped, baited):
        return None
    if any("\ue000" in piece or "\ue001" in piece for piece in pieces):
        return None
    return pieces


def _join(pieces: list[str], texts: list[str]) -> str:
    return pieces[0] + "".join(t + p for t, p in zip(texts, pieces[1:], strict=True))


def render_prompts(processor: Any, conversations: Sequence[list[dict[str, Any]]]) -> list[str]:
    """The chat template's rendering of each conversation (generation prompt added)."""
    try:
        with _LOCK:
            cache = _CACHES.setdefault(processor, {})
    except TypeError:  # a processor that cannot be weakly referenced: render in full
        return _render(processor, [list(c) for c in conversations]) if conversations else []
    out: list[str | None] = [None] * len(conversations)
    slow: list[int] = []
    for row, conversation in enumerate(conversations):
        shape = shape_of(conversation)
        if shape not in cache:
            pieces = _pieces(processor, conversation)
            if pieces is not None:
                fast = _join(pieces, _texts(conversation))
                if fast != _render(processor, [list(conversation)])[0]:
                    pieces = None
            cache[shape] = pieces
        pieces = cache[shape]
        if pieces is None:
            slow.append(row)
            continue
        out[row] = _join(pieces, _texts(conversation))
    if slow:
        rendered = _render(processor, [list(conversations[row]) for row in slow])
        for row, text in zip(slow, rendered, strict=True):
            out[row] = text
    assert all(text is not None for text in out)
    return out  # type: ignore[return-value]
