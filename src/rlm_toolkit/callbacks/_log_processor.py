"""``CallbackLogRecordProcessor``: event records -> ``on_retry``, ``on_token``, memory events.

Producers emit these through the Logs API with the in-process payload exposed
(``with payload_during(p): logger.emit(record)``); ``on_emit`` runs synchronously on the
emitting thread and reads it there. An event belongs to the callbacks recorded for its span
when that span is live in a :class:`CallbackSpanProcessor` (so tokens of a stream iterated
outside the ``Scope`` still reach that scope's callbacks); otherwise the current scope's
callbacks and the global ones see it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.trace import format_span_id

from rlm_toolkit import attributes as rlm
from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract, _registry
from rlm_toolkit.callbacks._span_processor import merge, routed_callbacks
from rlm_toolkit.genai._context import Payload, current_payload

_METHODS = {
    rlm.EVENT_RETRY: "on_retry",
    rlm.EVENT_TOKEN: "on_token",
    rlm.EVENT_MEMORY_STORE: "on_memory_store",
    rlm.EVENT_MEMORY_RECALL: "on_memory_recall",
}


def event_kwargs(
    event_name: str, attrs: Mapping[str, Any], payload: Payload | None, exception: BaseException | None
) -> dict[str, Any] | None:
    """Keywords of one point event, or ``None`` when it cannot be delivered (a token event
    without its in-process text)."""
    extra: Mapping[str, Any] = (payload.extra if payload is not None else None) or {}
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
    if event_name == rlm.EVENT_RETRY:
        error = payload.error if payload is not None and payload.error is not None else exception
        return _extract.retry_kwargs(attrs, error)
    if event_name == rlm.EVENT_MEMORY_STORE:
        return {"content": extra.get("content"), "extra": dict(extra)}
    return {"query": extra.get("query"), "results": extra.get("results"), "extra": dict(extra)}


class CallbackLogRecordProcessor(LogRecordProcessor):
    """Feeds ``rlm.retry``, ``rlm.llm.token`` and ``rlm.memory.*`` event records to callbacks."""

    def __init__(self, callbacks: Sequence[Any] = ()) -> None:
        from rlm_toolkit.callbacks._bridge import validate_callbacks

        self._fixed = validate_callbacks(callbacks)

    def on_emit(self, log_record: Any) -> None:
        # ``log_record`` is a ReadWriteLogRecord (SDK >= 1.39) or LogData (older): both have
        # ``.log_record``.
        try:
            record = log_record.log_record
            name = _METHODS.get(getattr(record, "event_name", None) or "")
            if name is None:
                return
            span_id = record.span_id or 0
            entry = _registry.find_span(span_id)
            if entry is not None:
                callbacks = merge(self._fixed, entry.callbacks)
            else:
                callbacks = routed_callbacks(self._fixed)
            if not callbacks:
                return
            attrs: Mapping[str, Any] = record.attributes or {}
            kwargs = event_kwargs(
                record.event_name, attrs, current_payload(), getattr(record, "exception", None)
            )
            if kwargs is None:
                return
            timestamp = (record.timestamp or record.observed_timestamp or 0) / 1e9
            kwargs["run_id"] = format_span_id(span_id) if span_id else None
            if entry is not None:
                kwargs["parent_run_id"] = format_span_id(entry.parent_id) if entry.parent_id else None
                kwargs["model"], kwargs["operation"], kwargs["span"] = (
                    entry.model,
                    entry.operation,
                    entry.span,
                )
            else:
                kwargs["parent_run_id"] = kwargs["model"] = kwargs["operation"] = kwargs["span"] = None
            kwargs["timestamp"] = kwargs["start_time"] = timestamp
        except Exception as exc:
            contain("CallbackLogRecordProcessor.on_emit", exc)
            return
        for cb in callbacks:
            _dispatch.call(cb, name, kwargs)

    # Older SDKs call ``emit``; keep both names working.
    emit = on_emit

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return _dispatch.flush(timeout_millis / 1000)
