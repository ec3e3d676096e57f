"""Test helpers for qvl_integrations (tiny offline checkpoints)."""

from qvl_integrations.testing.tiny_checkpoint import (
    SPECIAL_TOKENS,
    TINY_CHAT_TEMPLATE,
    build_tiny_checkpoint,
)

__all__ = ["SPECIAL_TOKENS", "TINY_CHAT_TEMPLATE", "build_tiny_checkpoint"]
