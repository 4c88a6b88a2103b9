"""OpenTelemetry instrumentation of the ``openai`` Python SDK (1.x, 2.x, 3.x).

Registered as the ``opentelemetry_instrumentor`` entry point ``rlm_openai``, so
``opentelemetry-instrument`` loads it and ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_openai``
disables it. Most apps call :func:`rlm_toolkit.instrument` instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

__all__ = ["OpenAIInstrumentor"]

_INSTRUMENTS = ("openai >= 1.40",)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans, metrics and events for ``openai`` chat completions, responses, embeddings and
    legacy completions (sync and async, plain and streamed, raw responses, ``.parse()`` and
    the ``.stream()`` helpers), with SDK retries visible on the call's span.

    ``instrument()`` keyword arguments: ``tracer_provider``, ``meter_provider``,
    ``logger_provider`` (default: the global ones) and ``capture_content`` (bool or one of
    ``span_only``/``event_only``/``span_and_event``/``no_content``; default: from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.openai._setup import instrument_openai

        instrument_openai(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.openai._targets import unwrap_all

        unwrap_all()
