"""``CallbackLogRecordProcessor``: event records -> ``on_retry``, ``on_token``.

Streamed tokens arrive as records only when token export is on (``RLM_EXPORT_TOKEN_EVENTS``);
by default the provider's ``TelemetryHandler`` hands them to :meth:`on_point_event` without a
record, so an in-process need never becomes backend volume.

Producers emit these through the Logs API with the in-process payload exposed
(``with payload_during(p): logger.emit(record)``); ``on_emit`` runs synchronously on the
emitting thread and reads it there. An event reaches this processor's own callbacks and, for
the routing processor ``ensure_router`` attaches, the callbacks of the scope the producer
started the call in (``Payload.scope``, so tokens of a stream iterated outside the ``Scope``
still reach it; the current scope for records without our payload). The span the event
belongs to (model, operation, parent) is read from ``Payload.span``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import format_span_id

from rlm_toolkit import attributes as rlm
from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract
from rlm_toolkit.callbacks._events import PointEvent, Retry, Token
from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor, deliver, merge, scope_callbacks
from rlm_toolkit.callbacks._validate import validate_callbacks, wants_tokens
from rlm_toolkit.genai import Consumer
from rlm_toolkit.genai._context import Payload, current_payload, current_scope

_METHODS: dict[str, type[PointEvent]] = {
    rlm.EVENT_RETRY: Retry,
    rlm.EVENT_TOKEN: Token,
}


def point_fields(
    event_name: str, attrs: Mapping[str, Any], payload: Payload | None, exception: BaseException | None
) -> dict[str, Any] | None:
    """The event-specific fields of one point event, or ``None`` when it cannot be delivered
    (a token event without its in-process text)."""
    if event_name == rlm.EVENT_TOKEN:
        token = payload.token if payload is not None else None
        if token is None:
            return None
        # ``rlm.token.index``: the 0-based position of this text token among the stream's text
        # tokens, as the producer counted it (passed through, never recounted here).
        index = attrs.get(rlm.RLM_TOKEN_INDEX)
        return {
            "token": token,
            "index": index if isinstance(index, int) and not isinstance(index, bool) else None,
        }
    error = payload.error if payload is not None and payload.error is not None else exception
    return _extract.retry_fields(attrs, error)


def _span_facts(span: Any) -> tuple[str | None, str | None, int]:
    """(model, operation, parent span id) of the live span an event belongs to."""
    attrs = getattr(span, "attributes", None) or {}
    model, operation = attrs.get(GA.GEN_AI_REQUEST_MODEL), attrs.get(GA.GEN_AI_OPERATION_NAME)
    parent = getattr(span, "parent", None)
    return (
        model if isinstance(model, str) else None,
        operation if isinstance(operation, str) else None,
        parent.span_id if parent is not None else 0,
    )


class CallbackLogRecordProcessor(LogRecordProcessor, Consumer):
    """Feeds ``rlm.retry`` and ``rlm.llm.token`` event records to callbacks.

    Args:
        callbacks: see every such event of the provider this processor is added to.
        route_for: the provider this processor is the scope router of (``ensure_router``).

    ``on_emit`` runs on the emitting thread and never raises. ``wants_tokens`` tells the
    provider's ``TelemetryHandler`` whether to emit token events at all. After ``shutdown()``
    nothing is delivered.
    """

    def __init__(self, callbacks: Sequence[Any] = (), *, route_for: object = None) -> None:
        self._fixed = self.fixed_callbacks = validate_callbacks(callbacks)
        self._async = _dispatch.AsyncDelivery()  # this processor's async callbacks
        self._route_for = route_for
        self.routes_scopes = route_for is not None
        self.wants_payload = bool(self._fixed)
        self.wants_tokens = wants_tokens(self._fixed)
        #: The span router of the same pipeline (``ensure_router`` pairs them): an event of a
        #: span it holds goes to the callbacks it chose for that span at its start.
        self.span_router: CallbackSpanProcessor | None = None

    def on_emit(self, log_record: Any) -> None:
        # ``log_record`` is a ReadWriteLogRecord (SDK >= 1.39) or LogData (older): both have
        # ``.log_record``.
        try:
            record = log_record.log_record
            name = getattr(record, "event_name", None) or ""
            if name not in _METHODS:
                return
            self._deliver(
                name,
                record.span_id or 0,
                record.attributes or {},
                record.timestamp or record.observed_timestamp or 0,
                current_payload(),
                getattr(record, "exception", None),
            )
        except Exception as exc:
            contain("CallbackLogRecordProcessor.on_emit", exc)

    # Older SDKs call ``emit``; keep both names working.
    emit = on_emit

    def on_point_event(
        self, name: str, span: Any, attributes: Mapping[str, Any], timestamp: int, payload: Payload
    ) -> None:
        """A token event delivered in-process only (no record): delivered as ``on_emit``
        would deliver the record."""
        try:
            if name not in _METHODS:
                return
            self._deliver(name, span.get_span_context().span_id, attributes, timestamp, payload, None)
        except Exception as exc:
            contain("CallbackLogRecordProcessor.on_point_event", exc)

    def _deliver(
        self,
        name: str,
        span_id: int,
        attrs: Mapping[str, Any],
        timestamp_ns: int,
        payload: Payload | None,
        exception: BaseException | None,
    ) -> None:
        """Deliver one point event (a record's, or an in-process one's) to the callbacks."""
        callbacks = self._fixed
        entry = None
        if self.routes_scopes:
            router = self.span_router
            entry = router.entry(span_id) if router is not None and span_id else None
            if entry is not None:  # the callbacks chosen at the span's start
                callbacks = merge(callbacks, entry.callbacks)
            else:
                scope = payload.scope if payload is not None else None
                if scope is None:
                    scope = current_scope()
                callbacks = merge(callbacks, scope_callbacks(scope, self._route_for, True))
        if not callbacks:
            return
        fields = point_fields(name, attrs, payload, exception)
        if fields is None:
            return
        timestamp = timestamp_ns / 1e9
        span = payload.span if payload is not None else None
        model: str | None
        operation: str | None
        if entry is not None:
            model, operation, parent_id, span = entry.model, entry.operation, entry.parent_id, entry.span
        elif span is not None:
            model, operation, parent_id = _span_facts(span)
        else:
            model = operation = None
            parent_id = 0
        event = _METHODS[name](
            run_id=format_span_id(span_id) if span_id else None,
            parent_run_id=format_span_id(parent_id) if parent_id else None,
            model=model,
            operation=operation,
            span=span,
            timestamp=timestamp,
            start_time=timestamp,
            **fields,
        )
        deliver(callbacks, event, self._async)

    def shutdown(self) -> None:
        """Stop delivering: no callback is called for records emitted from now on."""
        self._fixed = self.fixed_callbacks = ()
        self.routes_scopes = self.wants_payload = self.wants_tokens = False
        self._route_for = None
        self._async.close()  # bounded wait: what was delivered before exit still arrives

    def pending_tasks(self) -> list[Any]:
        """This processor's async callbacks scheduled on the app's event loops and not finished
        yet (those on its background loop are waited for by :meth:`force_flush`)."""
        return self._async.pending_tasks()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._async.flush(timeout_millis / 1000)
