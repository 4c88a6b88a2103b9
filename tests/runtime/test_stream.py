"""RLM.stream ends its run exactly once on every exit path, and closes the inner SDK stream.

Each test asserts the whole shape: the exported spans (name, end reason, status), the events the
callbacks saw (with run ids, so each span's start and end are counted once), and the result.
"""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode, format_span_id

from rlm_toolkit.genai import end_abandoned_streams as drain
from rlm_toolkit.runtime import RLM, RLMResult
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder

PROMPT = "Write a haiku about coding"


def make_rlm(server: OpenAIServer, telemetry: Telemetry, recorder: Recorder) -> RLM:
    return RLM.from_openai(
        "gpt-4o",
        callbacks=[recorder],
        api_key=API_KEY,
        base_url=server.base_url,
        max_retries=0,
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
    )


def full_answer(server: OpenAIServer) -> str:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        response = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": PROMPT}]
        )
    return str(response.choices[0].message.content)


def shape(span: ReadableSpan) -> tuple[str, Any, StatusCode]:
    return (span.name, (span.attributes or {}).get("rlm.stream.end_reason"), span.status.status_code)


def spans_of(telemetry: Telemetry) -> tuple[ReadableSpan, ReadableSpan]:
    llm, run = telemetry.spans.get_finished_spans()
    return llm, run


def events(recorder: Recorder, llm: ReadableSpan, run: ReadableSpan) -> list[tuple[str, str]]:
    """(method, which span) for every callback event, so a repeated end shows up."""
    who = {format_span_id(llm.context.span_id): "llm", format_span_id(run.context.span_id): "run"}
    return [(name, who[kw["run_id"]]) for name, kw in recorder.events]


SUCCESS = [("on_run_start", "run"), ("on_llm_start", "llm"), ("on_llm_end", "llm"), ("on_run_end", "run")]
# One failure, told once (by the LLM span that failed first); the failed run still ends with
# on_run_end(result=None, error=...), so every run_start has its run_end.
FAILURE = [("on_run_start", "run"), ("on_llm_start", "llm"), ("on_error", "llm"), ("on_run_end", "run")]


def assert_failed_with(recorder: Recorder, error: BaseException) -> None:
    assert [kw["error"] for kw in recorder.of("on_error")] == [error]
    run_end = recorder.of("on_run_end")[0]
    assert (run_end["result"], run_end["error"]) == (None, error)


def assert_ended(telemetry: Telemetry, recorder: Recorder, reason: str, expected_events: list[Any]) -> None:
    llm, run = spans_of(telemetry)
    status = StatusCode.ERROR if reason == "error" else StatusCode.UNSET
    assert [shape(llm), shape(run)] == [("chat gpt-4o", reason, status), ("invoke_agent rlm", reason, status)]
    assert llm.parent is not None and llm.parent.span_id == run.context.span_id
    assert events(recorder, llm, run) == expected_events


def test_exhausted(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    text = "".join(stream)
    assert text == full_answer(server)
    assert_ended(telemetry, recorder, "completed", SUCCESS)
    assert stream.result is not None and stream.result.answer == text and stream.result.iterations == 1
    assert recorder.of("on_run_end")[0]["result"] is stream.result
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans.get_finished_spans()) == 2  # nothing ends twice
    assert len(recorder.events) == 4


def test_break_inside_with(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    received = []
    with make_rlm(server, telemetry, recorder).stream(PROMPT) as stream:
        for token in stream:
            received.append(token)
            if len(received) == 2:
                break
    assert_ended(telemetry, recorder, "closed", SUCCESS)
    result = stream.result
    assert result is not None and result.answer == "".join(received) and result.iterations == 1
    assert recorder.of("on_run_end")[0]["result"] is result
    assert list(stream) == []
    del stream
    gc.collect()
    assert len(telemetry.spans.get_finished_spans()) == 2


def test_close_twice(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    first = next(stream)
    inner = stream._state._chunks
    stream.close()
    stream.close()
    assert inner.response.is_closed  # the HTTP response is released
    assert_ended(telemetry, recorder, "closed", SUCCESS)
    assert stream.result is not None and stream.result.answer == first


def test_exception_mid_stream(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    server.queue_fault("cut_stream", after_chunks=3)
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    received = []
    with pytest.raises(openai.APIConnectionError) as info:
        for token in stream:
            received.append(token)
    assert received
    assert_ended(telemetry, recorder, "error", FAILURE)
    assert_failed_with(recorder, info.value)
    assert stream.result is None
    stream.close()
    assert list(stream) == []
    assert len(telemetry.spans.get_finished_spans()) == 2


def test_exception_in_the_with_block(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    error = ValueError("the app's own bug")
    with pytest.raises(ValueError) as info, make_rlm(server, telemetry, recorder).stream(PROMPT) as stream:
        next(stream)
        raise error
    assert info.value is error  # propagates unchanged
    assert_ended(telemetry, recorder, "error", FAILURE)
    assert_failed_with(recorder, error)
    assert stream.result is None


def test_abandoned_after_some_tokens(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    first = next(stream)
    inner = stream._state._chunks
    alive = weakref.ref(stream)
    del stream
    gc.collect()
    assert alive() is None
    drain()  # what the reaper thread does within 0.2 s (it may already have)
    assert inner.response.is_closed
    assert_ended(telemetry, recorder, "abandoned", SUCCESS)
    result = recorder.of("on_run_end")[0]["result"]
    assert isinstance(result, RLMResult)
    assert (result.answer, result.iterations, result.error) == (first, 1, None)
    gc.collect()
    assert len(telemetry.spans.get_finished_spans()) == 2


def test_abandoned_in_a_reference_cycle(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream: Any = make_rlm(server, telemetry, recorder).stream(PROMPT)
    next(stream)
    stream.me = stream  # only the cycle collector can free it
    del stream
    assert telemetry.spans.get_finished_spans() == ()
    before = time.time_ns()
    gc.collect()
    after = time.time_ns()
    drain()
    assert_ended(telemetry, recorder, "abandoned", SUCCESS)
    # Both spans end when the stream was collected, not when the reaper got to them.
    for span in spans_of(telemetry):
        assert span.end_time is not None and before <= span.end_time <= after, span.name


def test_abandoned_before_the_first_token_makes_no_call(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    del stream
    gc.collect()
    drain()
    assert telemetry.spans.get_finished_spans() == ()
    assert recorder.events == []
    assert server.requests == []


def test_closed_before_the_first_token(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    stream.close()
    assert stream.result == RLMResult(answer="", iterations=0, model="gpt-4o")
    assert list(stream) == []
    assert (telemetry.spans.get_finished_spans(), recorder.events, server.requests) == ((), [], [])


def test_abandoned_streams_end_once_released(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    rlm = make_rlm(server, telemetry, recorder)
    streams = [rlm.stream(PROMPT) for _ in range(3)]
    for stream in streams:
        next(stream)
    refs = [weakref.ref(s) for s in streams]
    del streams, stream
    assert [r() for r in refs] == [None, None, None]  # freed by refcount, no cycle
    drain()  # what the reaper thread does within 0.2 s
    run_spans = [s for s in telemetry.spans.get_finished_spans() if s.name == "invoke_agent rlm"]
    assert [shape(s)[1] for s in run_spans] == ["abandoned"] * 3
    assert recorder.names().count("on_run_end") == 3


def test_a_stream_without_usage_reports_unknown_usage(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    server.queue_fault("no_usage")
    stream = make_rlm(server, telemetry, recorder).stream(PROMPT)
    text = "".join(stream)
    result = stream.result
    assert result is not None and result.answer == text != ""
    assert (result.usage.known, result.usage.total_tokens, result.cost) == (False, 0, None)
    _llm, run = spans_of(telemetry)
    attributes = dict(run.attributes or {})
    assert "gen_ai.usage.input_tokens" not in attributes and "gen_ai.usage.output_tokens" not in attributes
    assert "gen_ai.usage.cost" not in attributes
    assert attributes["rlm.run.iterations"] == 1
