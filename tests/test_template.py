"""Rendering prompts once per shape equals the chat template's own rendering."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from conftest import make_image

from qvl_integrations import QwenVLEmbedder, to_input
from qvl_integrations.core.prompts import embedding_conversation, rerank_conversation
from qvl_integrations.core.template import _CACHES, render_prompts, shape_of
from qvl_integrations.core.vision import prepare_media

TRICKY = [
    "plain words",
    "",
    "  leading and trailing spaces \n",
    "{{ not a template }} {% raw %} <|im_end|>",
    "unicode: café, 東京, emoji 🙂",
    "\ue000 private use \ue001",
    "line one\nline two",
]


def _conversations(embedder: QwenVLEmbedder) -> list[list[dict[str, Any]]]:
    image = make_image(40, 30, seed=5)
    out = []
    for text in TRICKY:
        for value in (text, {"text": [text, text + "!"], "image": image}):
            item = to_input(value)
            media = prepare_media(item, embedder.vision)
            out.append(embedding_conversation(item, media, "Represent: " + text))
            out.append(rerank_conversation(item, media, item, media, text or "judge"))
    return out


def test_cached_rendering_equals_the_template(embedder: QwenVLEmbedder) -> None:
    processor = embedder.loaded.processor
    conversations = _conversations(embedder)
    expected = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=False
    )
    _CACHES.pop(processor, None)
    assert render_prompts(processor, conversations) == expected
    assert all(pieces is not None for pieces in _CACHES[processor].values())  # all fast
    assert render_prompts(processor, conversations[::-1]) == expected[::-1]  # from the cache
    assert len(_CACHES[processor]) == len({shape_of(c) for c in conversations})


class _Processor:
    """A processor whose template changes texts (trims them) or reads them."""

    def __init__(self, source: str) -> None:
        self.template = jinja2.Environment().from_string(source)

    def apply_chat_template(self, conversations: Any, **kwargs: Any) -> list[str]:
        return [self.template.render(messages=c) for c in conversations]


@pytest.mark.parametrize(
    "source",
    [
        "{% for m in messages %}{% for p in m.content %}[{{ p.text | trim }}]{% endfor %}"
        "{% endfor %}",
        "{% for m in messages %}{% for p in m.content %}"
        "{% if p.text.startswith('x') %}X{% endif %}{{ p.text }}{% endfor %}{% endfor %}",
        "{% for m in messages %}{% for p in m.content %}"
        "{% if 'x' in p.text %}X{% endif %}{{ p.text }}{% endfor %}{% endfor %}",
        "{% for m in messages %}{% for p in m.content %}"
        "{% if p.text == 'plain' %}P{% endif %}{{ p.text }}{% endfor %}{% endfor %}",
    ],
)
def test_templates_that_touch_texts_are_rendered_in_full(source: str) -> None:
    processor = _Processor(source)
    rows = [
        [{"role": "user", "content": [{"type": "text", "text": t}]}]
        for t in (" padded ", "x marks", "plain", " x ")
    ]
    expected = processor.apply_chat_template(rows)
    assert render_prompts(processor, rows) == expected
