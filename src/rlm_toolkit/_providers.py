"""Where the runtime's model providers come from (the composition root between ``runtime/``,
which knows no SDK, and ``instrumentation/``, which knows each SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlm_toolkit.runtime._provider import ModelProvider


def openai_provider() -> ModelProvider:
    """The ``openai`` SDK's provider (imported on first use: ``import rlm_toolkit`` stays light)."""
    from rlm_toolkit.instrumentation.openai._runtime import OPENAI

    return OPENAI
