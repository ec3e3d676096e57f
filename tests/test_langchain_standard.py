"""langchain-tests' standard suites for QwenVLEmbeddings, on the tiny checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from qvl_integrations.langchain import QwenVLEmbeddings


class _TinyCheckpoint:
    checkpoint_path: str = ""

    @pytest.fixture(autouse=True)
    def _use_tiny_checkpoint(self, checkpoint: Path) -> None:
        type(self).checkpoint_path = str(checkpoint)

    @property
    def embeddings_class(self) -> type[QwenVLEmbeddings]:
        return QwenVLEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": self.checkpoint_path, "batch_size": 4}


class TestQwenVLEmbeddingsUnit(_TinyCheckpoint, EmbeddingsUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # The checkpoint comes from QVL_EMBEDDING_MODEL when model_name is not given.
        return (
            {"QVL_EMBEDDING_MODEL": self.checkpoint_path},
            {"batch_size": 4},
            {"model_name": self.checkpoint_path},
        )


class TestQwenVLEmbeddingsIntegration(_TinyCheckpoint, EmbeddingsIntegrationTests):
    pass
