"""Rendering prompts once per shape equals the chat template's own rendering."""

from __future__ import annotations

import copy
from typing import Any

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


#: Templates that look into texts; each must be caught and rendered in full.
TOUCHING = [
    "{%- for m in messages -%}[{% for c in m.content %}{{ c.text | trim }}{% endfor %}]"
    "{%- endfor -%}",
    "{%- for m in messages -%}[{% for c in m.content %}{{ c.text | e }}{% endfor %}]{%- endfor -%}",
    "{%- for m in messages -%}[{% for c in m.content %}{{ c.text | lower }}{% endfor %}]"
    "{%- endfor -%}",
    "{%- for m in messages -%}[{% for c in m.content %}"
    "{% if '</think>' in c.text %}{{ c.text.split('</think>')[-1] }}{% else %}{{ c.text }}"
    "{% endif %}{% endfor %}]{%- endfor -%}",
    # a whole message rendered by a macro, then trimmed (as newer Qwen templates do)
    "{%- macro render(content) -%}{%- for c in content -%}{{- c.text -}}{%- endfor -%}"
    "{%- endmacro -%}{%- for m in messages -%}[{{ render(m.content) | trim }}]{%- endfor -%}",
]


@pytest.mark.parametrize("source", TOUCHING)
def test_templates_that_look_into_texts_are_rendered_in_full(
    embedder: QwenVLEmbedder, source: str
) -> None:
    processor = copy.copy(embedder.loaded.processor)  # the real apply_chat_template path
    processor.chat_template = source
    first = "plain"  # the first prompt of the shape is unaffected by any of the templates
    rows = [
        [{"role": "user", "content": [{"type": "text", "text": t}]}]
        for t in (first, "  padded  ", "UPPER & <b>", "hidden</think>shown", " x ")
    ]
    expected = processor.apply_chat_template(rows, add_generation_prompt=True, tokenize=False)
    assert render_prompts(processor, rows) == expected
    assert _CACHES[processor][shape_of(rows[0])] is None  # caught by the probes, not by luck
