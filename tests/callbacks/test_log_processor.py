"""CallbackLogRecordProcessor: rlm.retry / rlm.llm.token records -> callbacks."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import format_span_id, set_span_in_context

from rlm_toolkit.callbacks import SpanError
from rlm_toolkit.genai import Payload, payload_during, use_scope

from .conftest import Otel, Recorder

RETRY_ATTRS = {
    "rlm.retry.attempt": 1,
    "rlm.retry.max_retries": 2,
    "rlm.retry.delay_s": 0.5,
    "rlm.retry.retry_after_s": 0.25,
    "http.response.status_code": 429,
    "error.type": "RateLimitError",
}


def _emit(otel: Otel, name: str, attrs: dict[str, Any], payload: Payload | None, span: Any = None) -> None:
    context = set_span_in_context(span) if span is not None else None
    with payload_during(payload):
        otel.logger.emit(event_name=name, attributes=attrs, context=context)


def test_retry_and_token_events_whole_shape(otel: Otel) -> None:
    cb = Recorder()
    error = RuntimeError("429 Too Many Requests")
    with use_scope(otel.scope(cb)):
        span = otel.tracer.start_span(
            "chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
        )
        retry = Payload()
        retry.error = error
        _emit(otel, "rlm.retry", RETRY_ATTRS, retry, span)
        for i, text in enumerate(["Hel", "lo"]):
            token = Payload()
            token.token = text
            _emit(otel, "rlm.llm.token", {"rlm.token.index": i}, token, span)
        span.end()
        # No longer an event callbacks get (nothing produced it): ignored, never an error.
        _emit(otel, "rlm.memory.store", {}, Payload())
    run_id = format_span_id(span.context.span_id)
    on_span = {"run_id": run_id, "parent_run_id": None, "model": "gpt-4o", "operation": "chat", "span": span}
    events = [
        (name, {k: v for k, v in kw.items() if k not in ("timestamp", "start_time")})
        for name, kw in cb.events
    ]
    assert events[1:5] == [
        (
            "on_retry",
            {
                "attempt": 1,
                "max_attempts": 2,
                "error": error,
                "delay_s": 0.5,
                "retry_after_s": 0.25,
                "status_code": 429,
                "error_type": "RateLimitError",
                **on_span,
            },
        ),
        ("on_token", {"token": "Hel", "index": 0, **on_span}),
        ("on_token", {"token": "lo", "index": 1, **on_span}),
        ("on_llm_end", events[4][1]),
    ]
    assert len(events) == 5
    assert all(isinstance(kw["timestamp"], float) for _, kw in cb.events[1:4])
    assert all(
        kw["start_time"] == kw["timestamp"]
        for name, kw in cb.events
        if name != "on_llm_start" and name != "on_llm_end"
    )
    # The exported records carry no token text.
    token_records = [r for r in otel.logs.get_finished_logs() if r.log_record.event_name == "rlm.llm.token"]
    assert [dict(r.log_record.attributes or {}) for r in token_records] == [
        {"rlm.token.index": 0},
        {"rlm.token.index": 1},
    ]
    assert all(r.log_record.body is None for r in token_records)


def test_retry_without_payload_reconstructs_error(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        _emit(otel, "rlm.retry", RETRY_ATTRS, None)
    ((name, kw),) = cb.events
    assert (name, type(kw["error"]), str(kw["error"]), kw["attempt"]) == (
        "on_retry",
        SpanError,
        "RateLimitError",
        1,
    )


def test_token_without_payload_is_not_delivered(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        _emit(otel, "rlm.llm.token", {"rlm.token.index": 0}, None)
    assert cb.events == []


def test_tokens_follow_their_span_even_outside_the_scope(otel: Otel) -> None:
    """A stream started inside RLM A's scope but iterated after it: tokens still reach A only."""
    a, b = Recorder(), Recorder()
    with use_scope(otel.scope(a)):
        span = otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
    with use_scope(otel.scope(b)):
        token = Payload()
        token.token = "x"
        _emit(otel, "rlm.llm.token", {"rlm.token.index": 0}, token, span)
        span.end()
    assert a.names == ["on_llm_start", "on_token", "on_llm_end"]
    assert b.names == []


def test_unrelated_records_and_no_callbacks(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        _emit(otel, "gen_ai.client.inference.operation.details", {}, Payload())
        otel.logger.emit(body="plain log line")
    _emit(otel, "rlm.retry", RETRY_ATTRS, None)  # no scope, no global: nobody to tell
    assert cb.events == []
    assert len(otel.logs.get_finished_logs()) == 3


def test_global_callbacks_see_events_outside_any_scope(otel: Otel) -> None:
    cb = Recorder()
    otel.everywhere(cb)
    token = Payload()
    token.token = "t"
    _emit(otel, "rlm.llm.token", {"rlm.token.index": 3}, token)
    assert [(n, kw["token"], kw["index"]) for n, kw in cb.events] == [("on_token", "t", 3)]


def test_token_index_is_the_events_index_passed_through(otel: Otel) -> None:
    """``index`` is the record's 0-based ``rlm.token.index`` as emitted (not recounted by the
    bridge: the producer skips non-text chunks), ``None`` when absent or not an int."""

    class Indexed:  # not a BaseCallback; names only the keywords it wants
        def __init__(self) -> None:
            self.seen: list[tuple[str, Any]] = []

        def on_token(self, token: str, index: Any) -> None:
            self.seen.append((token, index))

    cb = Indexed()
    with use_scope(otel.scope(cb)):
        span = otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
        for text, attrs in [
            ("a", {"rlm.token.index": 0}),
            ("b", {"rlm.token.index": 1}),
            ("d", {"rlm.token.index": 3}),  # a gap stays a gap
            ("e", {}),
            ("f", {"rlm.token.index": "4"}),
            ("g", {"rlm.token.index": True}),
        ]:
            token = Payload()
            token.token = text
            _emit(otel, "rlm.llm.token", attrs, token, span)
        span.end()
    assert cb.seen == [("a", 0), ("b", 1), ("d", 3), ("e", None), ("f", None), ("g", None)]


def test_point_events_carry_the_span_and_its_parent(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        run = otel.tracer.start_span("invoke_agent rlm", attributes={"gen_ai.operation.name": "invoke_agent"})
        chat = otel.tracer.start_span(
            "chat m", context=set_span_in_context(run), attributes={"gen_ai.operation.name": "chat"}
        )
        token = Payload()
        token.token = "x"
        _emit(otel, "rlm.llm.token", {"rlm.token.index": 0}, token, chat)
        _emit(otel, "rlm.retry", RETRY_ATTRS, None, chat)
        chat.end()
        run.end()
    point = [kw for name, kw in cb.events if name in ("on_token", "on_retry")]
    assert [(kw["run_id"], kw["parent_run_id"], kw["span"]) for kw in point] == [
        (format_span_id(chat.context.span_id), format_span_id(run.context.span_id), chat)
    ] * 2
