"""The anthropic SDK instrumented: every Messages surface through the real SDK over real HTTP to
the offline server, with the SDK's own tracing on and off -- exactly one span per API call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from ..conftest import Otel, instrument_with

MODEL = "claude-sonnet-4-5"
USER = [{"role": "user", "content": "Say hello in one word."}]
OURS = "rlm_toolkit.instrumentation.anthropic"


@pytest.fixture
def inst(otel: Otel, capture: bool) -> Iterator[Otel]:
    instrument_with(otel, capture)
    yield otel
    rlm_toolkit.uninstrument()


def only_span(otel: Otel) -> ReadableSpan:
    """The one span of the one call made: ours, whatever the SDK's tracing setting."""
    spans = otel.spans()
    assert [(s.name, s.instrumentation_scope.name) for s in spans] == [(f"chat {MODEL}", OURS)]  # type: ignore[union-attr]
    return spans[0]


def check_call(span: ReadableSpan, message: Any, stream: bool = False) -> None:
    a = dict(span.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.response.id"] == message.id
    assert a["gen_ai.response.model"] == message.model
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    usage = message.usage
    total = (
        usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    )
    assert a["gen_ai.usage.input_tokens"] == total
    assert a["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert a["rlm.request.attempts"] == 1
    assert a.get("gen_ai.request.stream") is (True if stream else None)
    assert span.kind.name == "CLIENT"


def check_content(span: ReadableSpan, capture: bool, text: str) -> None:
    a = dict(span.attributes or {})
    if not capture:
        assert not any(k in a for k in ("gen_ai.input.messages", "gen_ai.output.messages"))
        return
    assert json.loads(str(a["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": USER[0]["content"]}]}
    ]
    [out] = json.loads(str(a["gen_ai.output.messages"]))
    assert out["parts"] == [{"type": "text", "content": text}] and out["finish_reason"] == "stop"


def test_create(inst: Otel, anth: anthropic.Anthropic, capture: bool) -> None:
    message = anth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    span = only_span(inst)
    check_call(span, message)
    check_content(span, capture, message.content[0].text)  # type: ignore[union-attr]


def test_create_stream(inst: Otel, anth: anthropic.Anthropic, capture: bool) -> None:
    events = list(anth.messages.create(model=MODEL, max_tokens=50, messages=USER, stream=True))  # type: ignore[arg-type]
    span = only_span(inst)
    start = events[0].message  # type: ignore[union-attr]
    delta = [e for e in events if e.type == "message_delta"][-1]
    a = dict(span.attributes or {})
    assert a["gen_ai.response.id"] == start.id
    assert a["gen_ai.usage.input_tokens"] == start.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == delta.usage.output_tokens > 1  # type: ignore[union-attr]
    assert a["rlm.stream.end_reason"] == "completed"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    check_content(span, capture, text)


def test_stream_helper_text_and_final_message(inst: Otel, anth: anthropic.Anthropic, capture: bool) -> None:
    with anth.messages.stream(model=MODEL, max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    span = only_span(inst)
    check_call(span, final, stream=True)
    assert dict(span.attributes or {})["rlm.stream.end_reason"] == "completed"
    check_content(span, capture, text)


def test_stream_helper_early_exit_keeps_partial_output(inst: Otel, anth: anthropic.Anthropic) -> None:
    with anth.messages.stream(model=MODEL, max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        for _ in stream.text_stream:
            break
    span = only_span(inst)
    a = dict(span.attributes or {})
    assert a["rlm.stream.end_reason"] == "closed"
    assert a["gen_ai.usage.input_tokens"] > 0
    # The output count seen so far (message_start's placeholder), once; no finish reason.
    assert a["gen_ai.usage.output_tokens"] == 1
    assert "gen_ai.response.finish_reasons" not in a
    assert span.status.is_ok


def test_stream_helper_error_in_block_fails_the_span(inst: Otel, anth: anthropic.Anthropic) -> None:
    with pytest.raises(KeyError), anth.messages.stream(model=MODEL, max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        next(iter(stream))
        raise KeyError("app")
    span = only_span(inst)
    assert dict(span.attributes or {})["rlm.stream.end_reason"] == "error"
    assert not span.status.is_ok


def test_parse(inst: Otel, anth: anthropic.Anthropic) -> None:
    message = anth.messages.parse(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    check_call(only_span(inst), message)


def test_with_raw_response(inst: Otel, anth: anthropic.Anthropic) -> None:
    raw = anth.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    check_call(only_span(inst), raw.parse())


def test_with_raw_response_of_a_stream(inst: Otel, anth: anthropic.Anthropic) -> None:
    raw = anth.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=USER, stream=True)  # type: ignore[arg-type]
    events = list(raw.parse())
    assert events[-1].type == "message_stop"
    a = dict(only_span(inst).attributes or {})
    assert a["rlm.stream.end_reason"] == "completed" and a["gen_ai.usage.output_tokens"] > 1


def test_with_streaming_response(inst: Otel, anth: anthropic.Anthropic) -> None:
    with anth.messages.with_streaming_response.create(model=MODEL, max_tokens=50, messages=USER) as response:  # type: ignore[arg-type]
        message = response.parse()
    assert message.content
    span = only_span(inst)
    assert dict(span.attributes or {})["gen_ai.request.model"] == MODEL


def test_beta_create_and_stream(inst: Otel, anth: anthropic.Anthropic) -> None:
    message = anth.beta.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    check_call(only_span(inst), message)
    inst.spans_exporter.clear()
    with anth.beta.messages.stream(model=MODEL, max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    check_call(only_span(inst), final, stream=True)


async def test_async_surfaces(inst: Otel, aanth: anthropic.AsyncAnthropic) -> None:
    message = await aanth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    check_call(only_span(inst), message)
    inst.spans_exporter.clear()
    events = [
        e async for e in await aanth.messages.create(model=MODEL, max_tokens=50, messages=USER, stream=True)
    ]  # type: ignore[arg-type]
    assert dict(only_span(inst).attributes or {})["rlm.stream.end_reason"] == "completed" and events
    inst.spans_exporter.clear()
    async with aanth.messages.stream(model=MODEL, max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        chunks = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert chunks
    check_call(only_span(inst), final, stream=True)
    inst.spans_exporter.clear()
    async with aanth.beta.messages.stream(model=MODEL, max_tokens=50, messages=USER) as bstream:  # type: ignore[arg-type]
        async for _ in bstream:
            break
    assert dict(only_span(inst).attributes or {})["rlm.stream.end_reason"] == "closed"


def test_retry_is_an_event_on_the_one_span(
    inst: Otel, anth: anthropic.Anthropic, server: OpenAIServer
) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    message = anth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    span = only_span(inst)
    a = dict(span.attributes or {})
    assert a["rlm.request.attempts"] == 2 and a["gen_ai.response.id"] == message.id
    [event] = span.events
    e = dict(event.attributes or {})
    assert event.name == "rlm.retry"
    assert (e["rlm.retry.attempt"], e["http.response.status_code"], e["error.type"]) == (
        1,
        429,
        "RateLimitError",
    )
    assert e["rlm.retry.retry_after_s"] >= 0 and e["rlm.retry.delay_s"] >= 0
    assert len(inst.logs("rlm.retry")) == 1


def test_error_envelope(inst: Otel, anth: anthropic.Anthropic, server: OpenAIServer) -> None:
    server.queue_fault("not_found")
    with pytest.raises(anthropic.NotFoundError):
        anth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    span = only_span(inst)
    a = dict(span.attributes or {})
    assert a["error.type"] == "NotFoundError"
    assert a["rlm.error.provider_type"] == "not_found_error"
    assert a["http.response.status_code"] == 404
    assert not span.status.is_ok


def test_trace_context_is_ours_when_the_sdk_would_send_its_own(
    inst: Otel, anth: anthropic.Anthropic, server: OpenAIServer, sdk_tracing: bool
) -> None:
    server.queue_fault("server_error")
    anth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    span = only_span(inst)
    sent = [r.headers.get("traceparent") for r in server.requests]
    assert len(sent) == 2  # one retry: each attempt carries it
    if sdk_tracing:
        ctx = span.get_span_context()
        ids = [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"]
        assert [s.split("-")[1:3] if s else None for s in sent] == [ids, ids]
    else:  # the SDK sends none without its tracing; neither do we
        assert sent == [None, None]


def test_not_instrumented_the_sdk_span_stays(
    otel: Otel, anth: anthropic.Anthropic, sdk_tracing: bool
) -> None:
    """Uninstrumented, the SDK's own span is left alone (and none when its tracing is off)."""
    anth.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    names = [s.name for s in otel.spans()]
    assert names == (["anthropic.messages.create"] if sdk_tracing else [])


def test_uninstrument_leaves_no_wrapper(otel: Otel) -> None:
    from anthropic import _base_client
    from anthropic.resources.beta.messages import messages as beta
    from anthropic.resources.messages import messages

    def wrapped() -> list[str]:
        owners: list[Any] = [messages.Messages, messages.AsyncMessages, beta.Messages, beta.AsyncMessages]
        found = [
            f"{o.__name__}.{m}"
            for o in owners
            for m in ("create", "parse", "stream")
            if type(vars(o)[m]).__name__ != "function"
        ]
        return found + [
            n for n in ("start_api_call_span",) if type(vars(_base_client)[n]).__name__ != "function"
        ]

    assert wrapped() == []
    instrument_with(otel)
    instrument_with(otel)  # twice: never double-wrapped
    assert len(wrapped()) == 13
    rlm_toolkit.uninstrument()
    assert wrapped() == []


def test_entry_point_instrumentor_alone(otel: Otel, server: OpenAIServer) -> None:
    """``opentelemetry-instrument`` loads ``rlm_anthropic`` on its own: its own handler."""
    from importlib.metadata import entry_points

    from rlm_toolkit.instrumentation.anthropic import AnthropicInstrumentor

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "rlm_anthropic"]
    assert ep.load() is AnthropicInstrumentor
    assert tuple(AnthropicInstrumentor().instrumentation_dependencies()) == ("anthropic >= 1.14",)
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        with anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test-secret", max_retries=0) as client:
            client.messages.create(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    finally:
        instrumentor.uninstrument()
    span = only_span(otel)
    assert "sk-ant-test-secret" not in json.dumps(dict(span.attributes or {}))
    assert instrumentor.handler is None


def test_abandoned_stream_helper_ends_once(inst: Otel, anth: anthropic.Anthropic) -> None:
    """A ``stream()`` whose ``with`` block is never left cleanly (entered, one event read,
    dropped): the reaper ends the span as abandoned, with the output seen so far."""
    import gc
    import time

    manager = anth.messages.stream(model=MODEL, max_tokens=50, messages=USER)  # type: ignore[arg-type]
    stream = manager.__enter__()
    next(iter(stream))
    del manager, stream
    gc.collect()
    deadline = time.monotonic() + 5
    while not inst.spans() and time.monotonic() < deadline:
        time.sleep(0.02)
    span = only_span(inst)
    a = dict(span.attributes or {})
    assert a["rlm.stream.end_reason"] == "abandoned" and a["gen_ai.usage.output_tokens"] == 1
