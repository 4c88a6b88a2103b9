"""``CallbackSpanExporter``: replay finished spans into callbacks, off the app's thread.

Behind a ``BatchSpanProcessor`` the callbacks run on the exporter's worker thread, so a slow
callback never delays the app (it only delays this exporter's batches). It also replays a saved
trace. Content comes from span attributes only (captured messages, if any): the in-process
payload is gone by export time. ``rlm.retry`` span events become ``on_retry``; token events
are not span events, so ``on_token`` is never replayed.

Failures are reported once, like the processor does: ``on_error`` on the innermost failed span,
not again on an ancestor that failed with the same error type and message (a parent exported in
a later batch is still matched: reported failures wait in a capped table for their parent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import format_span_id

from rlm_toolkit import attributes as rlm
from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract
from rlm_toolkit.callbacks._events import Event, Failed, Retry
from rlm_toolkit.callbacks._failures import Failure, FailureTable, already_told, describe
from rlm_toolkit.callbacks._span_processor import deliver

_START, _EVENT, _END = 0, 1, 2


class CallbackSpanExporter(SpanExporter):
    """Deliver each exported batch to ``callbacks`` as a timeline: every span's start, its
    retry events and its end, ordered by time (so a run's start precedes its calls)."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        from rlm_toolkit.callbacks._validate import validate_callbacks

        self._callbacks = validate_callbacks(callbacks)
        self._async = _dispatch.AsyncDelivery()  # this exporter's async callbacks
        self._failures = FailureTable()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            timeline = self._timeline(spans)
        except Exception as exc:
            contain("CallbackSpanExporter.export", exc)
            return SpanExportResult.FAILURE
        for event in timeline:
            deliver(self._callbacks, event, self._async)
        return SpanExportResult.SUCCESS

    def _timeline(self, spans: Sequence[ReadableSpan]) -> list[Event]:
        items: list[tuple[int, int, int, Event | None, ReadableSpan]] = []
        for seq, span in enumerate(spans):
            attrs = span.attributes or {}
            operation = attrs.get(GA.GEN_AI_OPERATION_NAME)
            start = span.start_time or 0
            end = span.end_time or start
            if not isinstance(operation, str) or _extract.kind(operation) is None:
                if span.parent is not None:  # carries its children's failures up to its parent
                    items.append((end, _END, seq, None, span))
                continue
            items.append((start, _START, -seq, _extract.start_event(span, None, operation), span))
            for event in span.events:
                if event.name == rlm.EVENT_RETRY:
                    model = attrs.get(GA.GEN_AI_REQUEST_MODEL)
                    retry = Retry(
                        run_id=format_span_id(span.context.span_id) if span.context else None,
                        parent_run_id=format_span_id(span.parent.span_id) if span.parent else None,
                        model=model if isinstance(model, str) else None,
                        operation=operation,
                        timestamp=event.timestamp / 1e9,
                        start_time=event.timestamp / 1e9,
                        span=span,
                        **_extract.retry_fields(event.attributes or {}, None),
                    )
                    items.append((event.timestamp, _EVENT, seq, retry, span))
            items.append((end, _END, seq, _extract.end_event(span, None, operation), span))
        # Ties: the SDK exports a child before its parent, so at equal times a later-listed span
        # starts first and an earlier-listed one ends first.
        items.sort(key=lambda item: item[:3])
        timeline: list[Event] = []
        for _, phase, _, happened, span in items:
            if phase != _END:
                if happened is not None:
                    timeline.append(happened)
                continue
            timeline.extend(self._ended(span, happened))
        return timeline

    def _ended(self, span: ReadableSpan, event: Event | None) -> list[Event]:
        """The events of one span's end, with failures reported once (see ``_failures``)."""
        context, parent = span.context, span.parent
        earlier = self._failures.take(context.span_id) if context is not None else []
        events: list[Event] = []
        if isinstance(event, Failed):
            error_type, message = describe(span)
            mine = Failure(None, error_type, message, ())
            if not already_told(mine, earlier):
                events.append(event)
            if event.operation == _extract.RUN_OPERATION:
                events.append(event.run_ended())
            earlier.append(Failure(None, error_type, message, self._callbacks))
        elif event is not None:
            events.append(event)
        if parent is not None:
            self._failures.file(parent.span_id, earlier)
        return events

    def shutdown(self) -> None:
        self._async.close()  # bounded wait: what was delivered before exit still arrives

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._async.flush(timeout_millis / 1000)
