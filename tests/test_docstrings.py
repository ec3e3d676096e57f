"""The runnable examples in docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "qvl_integrations.errors",
    "qvl_integrations.core.inputs",
    "qvl_integrations.core.batching",
    "qvl_integrations.core.encoding",
    "qvl_integrations.core.prompts",
    "qvl_integrations.core.quantize",
    "qvl_integrations.core.sources",
    "qvl_integrations.langchain",
    "qvl_integrations.llama_index",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
