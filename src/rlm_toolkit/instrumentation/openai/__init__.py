"""OpenTelemetry instrumentation of the ``openai`` Python SDK (1.x, 2.x, 3.x).

Registered as the ``opentelemetry_instrumentor`` entry point ``rlm_openai``, so
``opentelemetry-instrument`` loads it and ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_openai``
disables it. Most apps call :func:`rlm_toolkit.instrument` instead.
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

__all__ = ["OpenAIInstrumentor"]

_INSTRUMENTS = ("openai >= 1.40",)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans, metrics and events for ``openai`` chat completions, responses, embeddings and
    legacy completions (sync and async, plain and streamed, raw responses, ``.parse()`` and
    the ``.stream()`` helpers), with SDK retries visible on the call's span.

    ``instrument()`` keyword arguments: ``tracer_provider``, ``meter_provider``,
    ``logger_provider`` (default: the global ones) and ``capture_content`` (bool or one of
    ``span_only``/``event_only``/``span_and_event``/``no_content``; default: from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``), or ``handler``: a ready
    :class:`~rlm_toolkit.genai.TelemetryHandler` (what :func:`rlm_toolkit.instrument` passes).
    The instrumentor holds the handler until ``uninstrument()``, which closes it.

    Implicit vs explicit: :meth:`instrument_implicitly` (what ``RLM`` uses, through
    ``rlm_toolkit._instrument.ensure_instrumented``) instruments with the default providers
    only when nobody has, and remembers that it did. A later explicit :meth:`instrument` with
    the app's own providers then *replaces* that instrumentation instead of being ignored as
    "already instrumented", so the order of ``RLM(...)`` and ``instrument(...)`` never matters.
    An explicit instrumentation is never replaced implicitly.
    """

    _lock = threading.RLock()
    _implicit = False
    #: The pipeline owner of the active instrumentation (``BaseInstrumentor`` is a singleton).
    _handler: TelemetryHandler | None = None

    @property
    def handler(self) -> TelemetryHandler | None:
        """The :class:`~rlm_toolkit.genai.TelemetryHandler` every wrapped call reports through
        (outside a runtime scope), or None when not instrumented."""
        return self._handler if self.is_instrumented_by_opentelemetry else None

    @property
    def is_implicit(self) -> bool:
        """True while the active instrumentation was made by :meth:`instrument_implicitly`."""
        return self._implicit and bool(self.is_instrumented_by_opentelemetry)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def instrument(self, **kwargs: Any) -> None:
        """Instrument explicitly (replacing an implicit instrumentation, see the class doc)."""
        with self._lock:
            if self.is_implicit:
                self.uninstrument()
            super().instrument(**kwargs)

    def instrument_implicitly(self) -> bool:
        """Instrument with the default providers unless instrumented; True if this call did."""
        with self._lock:
            if self.is_instrumented_by_opentelemetry:
                return False
            super().instrument()
            if self.is_instrumented_by_opentelemetry:
                type(self)._implicit = True
                return True
            return False

    @staticmethod
    def report_retry(
        client: Any, delay: float, remaining_retries: int, options: Any, response_headers: Any
    ) -> None:
        """Report that the SDK will retry the current call after ``delay`` seconds.

        The seam for an ``openai`` client subclass that overrides ``_calculate_retry_timeout``
        (which hides our hook on the SDK's base method), e.g. the runtime's retry policy: call
        it from the override with the same arguments and the delay used. Call it on the thread
        of the SDK's retry loop (the exception being retried is read from ``sys.exc_info()``).
        No-op when no instrumented call is running; never raises.
        """
        from rlm_toolkit.instrumentation.openai._hooks import report_retry

        report_retry(client, delay, remaining_retries, options, response_headers)

    def _instrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.openai._setup import instrument_openai

        type(self)._implicit = False
        type(self)._handler = instrument_openai(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        from rlm_toolkit.instrumentation.openai._setup import uninstrument_openai

        type(self)._implicit = False
        handler, type(self)._handler = type(self)._handler, None
        uninstrument_openai(handler)
