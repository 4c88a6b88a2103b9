"""Where the runtime's model providers come from (the composition root between ``runtime/``,
which knows no SDK, and ``instrumentation/``, which knows each SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlm_toolkit.genai import TelemetryHandler
    from rlm_toolkit.runtime._provider import ModelProvider


def instrumented_handler() -> TelemetryHandler | None:
    """The handler of the app's explicit ``rlm_toolkit.instrument()``, or None: what an ``RLM``
    without providers of its own reports through (passed to its ``Routing``, read per run)."""
    from rlm_toolkit._instrument import active_handler

    return active_handler()


def openai_provider() -> ModelProvider:
    """The ``openai`` SDK's provider (imported on first use: ``import rlm_toolkit`` stays light)."""
    from rlm_toolkit.instrumentation.openai._runtime import OPENAI

    return OPENAI
