"""Where the runtime's model providers come from (the composition root between ``runtime/``,
which knows no SDK, and ``instrumentation/``, which knows each SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    from rlm_toolkit._openai_model import OPENAI_MODELS

    return OPENAI_MODELS


def anthropic_provider() -> ModelProvider:
    """The ``anthropic`` SDK's provider (the SDK itself is imported when a client is built)."""
    from rlm_toolkit.instrumentation.anthropic._runtime import ANTHROPIC

    return ANTHROPIC


def provider_for(client: Any) -> ModelProvider:
    """The provider of a client object: ``anthropic`` for the ``anthropic`` SDK's clients (and
    subclasses), else ``openai`` (its clients and any OpenAI-compatible one)."""
    for cls in type(client).__mro__:
        if cls.__module__.split(".", 1)[0] == "anthropic":
            return anthropic_provider()
    return openai_provider()
