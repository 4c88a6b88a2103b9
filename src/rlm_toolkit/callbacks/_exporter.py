"""``CallbackSpanExporter``: replay finished spans into callbacks, off the app's thread.

Behind a ``BatchSpanProcessor`` the callbacks run on the exporter's worker thread, so a slow
callback never delays the app (it only delays this exporter's batches). It also replays a saved
trace. Content comes from span attributes only (captured messages, if any): the in-process
payload is gone by export time. ``rlm.retry`` span events become ``on_retry``; token events
are not span events, so ``on_token`` is never replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as g
from opentelemetry.trace import format_span_id

from rlm_toolkit import attributes as rlm
from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract

_START, _EVENT, _END = 0, 1, 2


class CallbackSpanExporter(SpanExporter):
    """Deliver each exported batch to ``callbacks`` as a timeline: every span's start, its
    retry events and its end, ordered by time (so a run's start precedes its calls)."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        from rlm_toolkit.callbacks._bridge import validate_callbacks

        self._callbacks = validate_callbacks(callbacks)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            timeline = self._timeline(spans)
        except Exception as exc:
            contain("CallbackSpanExporter.export", exc)
            return SpanExportResult.FAILURE
        for name, kwargs in timeline:
            for cb in self._callbacks:
                _dispatch.call(cb, name, kwargs)
        return SpanExportResult.SUCCESS

    def _timeline(self, spans: Sequence[ReadableSpan]) -> list[tuple[str, dict[str, Any]]]:
        items: list[tuple[int, int, int, str, dict[str, Any]]] = []
        for seq, span in enumerate(spans):
            attrs = span.attributes or {}
            operation = attrs.get(g.GEN_AI_OPERATION_NAME)
            if not isinstance(operation, str) or _extract.kind(operation) is None:
                continue
            start = span.start_time or 0
            items.append((start, _START, -seq, *_extract.start_event(span, None, operation)))
            for event in span.events:
                if event.name == rlm.EVENT_RETRY:
                    kwargs = _extract.retry_kwargs(event.attributes or {}, None)
                    kwargs.update(
                        run_id=format_span_id(span.context.span_id) if span.context else None,
                        model=attrs.get(g.GEN_AI_REQUEST_MODEL),
                        operation=operation,
                        timestamp=event.timestamp / 1e9,
                        span=span,
                    )
                    items.append((event.timestamp, _EVENT, seq, "on_retry", kwargs))
            end = span.end_time or start
            items.append((end, _END, seq, *_extract.end_event(span, None, operation)))
        # Ties: the SDK exports a child before its parent, so at equal times a later-listed span
        # starts first and an earlier-listed one ends first.
        items.sort(key=lambda item: item[:3])
        return [(name, kwargs) for _, _, _, name, kwargs in items]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return _dispatch.flush(timeout_millis / 1000)
