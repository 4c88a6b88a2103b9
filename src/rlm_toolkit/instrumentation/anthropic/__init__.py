"""OpenTelemetry instrumentation of the ``anthropic`` Python SDK (Messages API).

Registered as the ``opentelemetry_instrumentor`` entry point ``rlm_anthropic``, so
``opentelemetry-instrument`` loads it and ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_anthropic``
disables it. Most apps call :func:`rlm_toolkit.instrument`, which instruments both SDKs.

One span per API call: each call we instrument gets our ``chat {model}`` span, and the SDK's
own span (its tracing is on by default since anthropic 1.14) is not started for that call, so
token totals never double whether the SDK's tracing is on or off.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

if TYPE_CHECKING:
    from rlm_toolkit.genai import TelemetryHandler

__all__ = ["AnthropicInstrumentor"]

_INSTRUMENTS = ("anthropic >= 1.14",)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans, metrics and events for ``anthropic`` Messages calls: ``messages.create`` (sync
    and async, ``stream=True``), the ``messages.stream()`` helpers, ``messages.parse``, raw and
    streaming responses, and the ``beta.messages`` twins, with SDK retries on the call's span.

    ``instrument()`` keyword arguments: ``tracer_provider``, ``meter_provider``,
    ``logger_provider`` (default: the global ones), ``capture_content`` and ``semconv`` (as
    :func:`rlm_toolkit.instrument`), or ``handler``: a ready
    :class:`~rlm_toolkit.genai.TelemetryHandler`. The instrumentor holds the handler until
    ``uninstrument()``, which closes it.
    """

    _lock = threading.RLock()
    _handler: TelemetryHandler | None = None

    @property
    def handler(self) -> TelemetryHandler | None:
        """The handler every wrapped call reports through, or None when not instrumented."""
        return self._handler if self.is_instrumented_by_opentelemetry else None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.anthropic._setup import instrument_anthropic

        type(self)._handler = instrument_anthropic(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.anthropic._setup import uninstrument_anthropic

        handler, type(self)._handler = type(self)._handler, None
        uninstrument_anthropic(handler)
