"""Attaching callback processors to a pipeline's providers (our entrances use it).

``attach_callbacks`` is what ``instrument(callbacks=...)`` does: one ``CallbackSpanProcessor``
and one ``CallbackLogRecordProcessor`` with those callbacks, attached to the handler's providers
and owned by the handler (``uninstrument()`` detaches them). ``ensure_router`` is what an
``RLM`` with callbacks does: it makes sure the handler's providers carry the one processor pair
that delivers a ``Scope``'s callbacks, found through the providers themselves (no registry).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from rlm_toolkit.callbacks._log_processor import CallbackLogRecordProcessor
from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor
from rlm_toolkit.genai import Consumer, TelemetryHandler

__all__ = ["attach_callbacks", "ensure_router"]

# Only serialises find-then-add, so two runs starting at once add one router, not two.
_attach_lock = threading.Lock()


def attach_callbacks(handler: TelemetryHandler, callbacks: Sequence[Any]) -> None:
    """Feed ``callbacks`` (validated) everything reported through ``handler``'s providers.

    The handler must have SDK providers (see ``TelemetryHandler.in_process``); the processors
    are owned by it and removed by its ``close()``.
    """
    if callbacks:
        handler.attach(CallbackSpanProcessor(callbacks), CallbackLogRecordProcessor(callbacks))


def ensure_router(handler: TelemetryHandler) -> tuple[Consumer | None, Consumer | None]:
    """The (span, log) processors on ``handler``'s providers that deliver scopes' callbacks,
    attached now if missing. Idempotent: 10,000 ``RLM`` objects on one provider add one pair."""
    with _attach_lock:
        span_router, log_router = handler.find_router()
        tp, lp = handler.sdk_tracer_provider(), handler.sdk_logger_provider()
        if span_router is None and tp is not None:
            span_router = CallbackSpanProcessor(route_for=tp)
            tp.add_span_processor(span_router)
        if log_router is None and lp is not None:
            log_router = CallbackLogRecordProcessor(route_for=lp)
            lp.add_log_record_processor(log_router)
        if isinstance(log_router, CallbackLogRecordProcessor) and isinstance(
            span_router, CallbackSpanProcessor
        ):
            log_router.span_router = span_router
        return span_router, log_router
