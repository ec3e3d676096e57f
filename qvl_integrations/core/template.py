"""Rendering prompts through the chat template once per conversation shape.

Rendering a Jinja chat template costs as much per prompt as tokenising it.
Every prompt of a call has one of a few *shapes* (the roles and the kinds of
content items, in order); the texts are what differ. A shape is rendered once
with a unique marker in place of each text, which splits the output into the
fixed pieces around the texts; each prompt of that shape is then those pieces
joined with its own texts.

That equals the template's own rendering when the template writes texts
verbatim and never looks into them, as Qwen3-VL's does for the system and
user turns we build. It is checked, not assumed: the markers are strings that
record any use beyond being written out (a comparison, ``in``, a filter such
as ``trim``, a method such as ``startswith``); they must come out verbatim and
in order; and the first prompt of each shape is also rendered by the template
and compared. A shape failing any check is rendered by the template from then
on.

Example:
    >>> shape_of([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    (('user', ('text',)),)
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["render_prompts", "shape_of"]

Shape = tuple[tuple[str, tuple[str, ...]], ...]

_MARK = "\ue000{}\ue001"  # private-use code points: never in a template or a prompt piece
_MARK_RE = re.compile("\ue000(\\d+)\ue001")

#: Per processor: shape -> the fixed pieces around its texts, or None (render in full).
_CACHES: weakref.WeakKeyDictionary[Any, dict[Shape, list[str] | None]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


#: ``str`` members a template may use on a text without depending on its content.
_NEUTRAL = frozenset(
    {
        "__str__",
        "__repr__",
        "__hash__",
        "__class__",
        "__new__",
        "__init__",
        "__getattribute__",
        "__getattr__",
        "__setattr__",
        "__delattr__",
        "__init_subclass__",
        "__subclasshook__",
        "__reduce__",
        "__reduce_ex__",
        "__getnewargs__",
        "__sizeof__",
        "__dir__",
        "__doc__",
        "__getstate__",
    }
)


class _Marker(str):
    """A text stand-in that records whether the template looked into it."""

    touched: list[bool]  # shared by the markers of one rendering


def _recording(name: str) -> Any:
    original = getattr(str, name)

    def method(self: _Marker, *args: Any, **kwargs: Any) -> Any:
        self.touched[0] = True
        return original(str(self), *args, **kwargs)

    method.__name__ = name
    return method


for _name in dir(str):
    if _name not in _NEUTRAL and callable(getattr(str, _name)):
        setattr(_Marker, _name, _recording(_name))


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


def _pieces(processor: Any, conversation: Sequence[dict[str, Any]]) -> list[str] | None:
    """The fixed pieces of ``conversation``'s shape, or ``None`` if texts are not verbatim."""
    counter = iter(range(1 << 30))
    touched = [False]

    def marker() -> _Marker:
        text = _Marker(_MARK.format(next(counter)))
        text.touched = touched
        return text

    marked = [
        {
            "role": message["role"],
            "content": [
                {"type": "text", "text": marker()}
                if part["type"] == "text"
                else {"type": part["type"], part["type"]: None}
                for part in message["content"]
            ],
        }
        for message in conversation
    ]
    try:
        text = _render(processor, [marked])[0]
    except Exception:  # noqa: BLE001 - a template that needs real media: render in full
        return None
    if touched[0]:
        return None
    parts = _MARK_RE.split(str(text))
    order = [int(k) for k in parts[1::2]]
    if order != list(range(len(_texts(conversation)))) or "\ue000" in "".join(parts[::2]):
        return None
    return parts[::2]


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
                texts = _texts(conversation)
                fast = pieces[0] + "".join(t + p for t, p in zip(texts, pieces[1:], strict=True))
                if fast != _render(processor, [list(conversation)])[0]:
                    pieces = None
            cache[shape] = pieces
        pieces = cache[shape]
        if pieces is None:
            slow.append(row)
            continue
        texts = _texts(conversation)
        out[row] = pieces[0] + "".join(t + p for t, p in zip(texts, pieces[1:], strict=True))
    if slow:
        rendered = _render(processor, [list(conversations[row]) for row in slow])
        for row, text in zip(slow, rendered, strict=True):
            out[row] = text
    assert all(text is not None for text in out)
    return out  # type: ignore[return-value]
