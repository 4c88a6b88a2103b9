"""The telemetry of a run, exported to in-memory SDK providers, matches what callbacks saw."""

from __future__ import annotations

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from rlm_toolkit.runtime import RLM, RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder


def make_rlm(server: OpenAIServer, telemetry: Telemetry, *callbacks: object, **options: object) -> RLM:
    return RLM.from_openai(
        "gpt-4o",
        callbacks=list(callbacks),
        api_key=API_KEY,
        base_url=server.base_url,
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
        **options,
    )


def test_run_span_tree_and_attributes(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    result = make_rlm(server, telemetry, recorder).run("Hello!")
    llm, run = telemetry.spans.get_finished_spans()
    assert (run.name, run.kind, run.parent) == ("invoke_agent rlm", SpanKind.INTERNAL, None)
    assert (llm.name, llm.kind) == ("chat gpt-4o", SpanKind.CLIENT)
    assert llm.parent is not None and llm.parent.span_id == run.context.span_id
    assert llm.context.trace_id == run.context.trace_id
    assert result.trace_id == format_trace_id(run.context.trace_id)
    assert dict(run.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "rlm",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
        "rlm.run.iterations": 1,
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.cost": result.cost,
    }
    assert run.status.status_code == StatusCode.UNSET
    # Usage totals of the run equal its single call's.
    assert llm.attributes is not None
    assert llm.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert llm.attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    # Content is not exported by default: neither the prompt nor the answer is on any span.
    for span in (llm, run):
        assert "Hello!" not in repr(dict(span.attributes or {}))
        assert result.answer not in repr(dict(span.attributes or {}))


def test_callbacks_see_the_exported_spans_event_for_event(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    make_rlm(server, telemetry, recorder).run("Hello!")
    llm, run = telemetry.spans.get_finished_spans()
    # Deterministic ids (the fixture's SequentialIds): the run span started first.
    run_id, llm_id = "0000000000000001", "0000000000000002"
    assert (format_span_id(run.context.span_id), format_span_id(llm.context.span_id)) == (run_id, llm_id)
    assert [(name, kw["run_id"], kw["parent_run_id"]) for name, kw in recorder.events] == [
        ("on_run_start", run_id, None),
        ("on_llm_start", llm_id, run_id),
        ("on_llm_end", llm_id, run_id),
        ("on_run_end", run_id, None),
    ]


def test_retries_are_events_on_the_one_llm_span(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    server.queue_fault("rate_limit", times=2, retry_after=0.01)
    make_rlm(server, telemetry, recorder, retry=RetryPolicy(max_retries=2)).run("Hello!")
    llm, _run = telemetry.spans.get_finished_spans()
    retry_events = [e for e in llm.events if e.name == "rlm.retry"]
    assert [(e.attributes or {}).get("rlm.retry.attempt") for e in retry_events] == [1, 2]
    assert [(e.attributes or {}).get("http.response.status_code") for e in retry_events] == [429, 429]
    assert llm.attributes is not None and llm.attributes["rlm.request.attempts"] == 3
    records = [r.log_record for r in telemetry.logs.get_finished_logs()]
    retry_records = [r for r in records if r.event_name == "rlm.retry"]
    assert [(r.attributes or {}).get("rlm.retry.attempt") for r in retry_records] == [1, 2]
    assert {r.span_id for r in retry_records} == {llm.context.span_id}
    assert [kw["attempt"] for kw in recorder.of("on_retry")] == [1, 2]
    assert {kw["run_id"] for kw in recorder.of("on_retry")} == {format_span_id(llm.context.span_id)}


def test_a_failed_run_marks_both_spans_and_reraises(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    server.queue_fault("unauthorized")
    with pytest.raises(openai.AuthenticationError):
        make_rlm(server, telemetry, recorder).run("Hello!")
    llm, run = telemetry.spans.get_finished_spans()
    for span in (llm, run):
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes is not None and span.attributes["error.type"] == "AuthenticationError"
    assert recorder.names()[:3] == ["on_run_start", "on_llm_start", "on_error"]
    # The API key never reaches a span or a record.
    exported = repr([dict(s.attributes or {}) for s in (llm, run)]) + repr(
        [r.log_record.attributes for r in telemetry.logs.get_finished_logs()]
    )
    assert API_KEY not in exported


def test_stream_run_has_the_same_tree(server: OpenAIServer, telemetry: Telemetry) -> None:
    rlm = make_rlm(server, telemetry)
    stream = rlm.stream("Write a haiku about coding")
    text = "".join(stream)
    llm, run = telemetry.spans.get_finished_spans()
    assert run.name == "invoke_agent rlm"
    assert llm.parent is not None and llm.parent.span_id == run.context.span_id
    assert stream.result is not None and stream.result.answer == text
    assert stream.result.trace_id == format_trace_id(run.context.trace_id)
    assert llm.attributes is not None and llm.attributes["rlm.stream.end_reason"] == "completed"


async def test_arun_has_the_same_tree(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    result = await make_rlm(server, telemetry, recorder).arun("Hello!")
    llm, run = telemetry.spans.get_finished_spans()
    assert llm.parent is not None and llm.parent.span_id == run.context.span_id
    assert result.trace_id == format_trace_id(run.context.trace_id)
    assert recorder.names() == ["on_run_start", "on_llm_start", "on_llm_end", "on_run_end"]
