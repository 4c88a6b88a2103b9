"""CallbackSpanProcessor: GenAI spans -> on_llm_* / on_tool_* / on_run_* / on_error, routed by scope."""

from __future__ import annotations

import json
import weakref
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id

from rlm_toolkit.callbacks import LLMResponse, Usage
from rlm_toolkit.callbacks._extract import SpanError
from rlm_toolkit.genai import Payload, payload_during, use_scope

from .conftest import Otel, Recorder, chat_call, text_message


def test_llm_start_and_end_with_payload_whole_shape(otel: Otel) -> None:
    cb = Recorder()
    raw = object()
    with use_scope(otel.scope(cb)):
        span = chat_call(otel.tracer, prompt="Hello!", raw=raw)
    assert cb.names == ["on_llm_start", "on_llm_end"]
    run_id = format_span_id(span.context.span_id)
    start, end = cb.events[0][1], cb.events[1][1]
    assert start == {
        "prompt": "Hello!",
        "messages": [text_message("system", "Be brief."), text_message("user", "Hello!")],
        "invocation_params": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]},
        "operation": "chat",
        "model": "gpt-4o",
        "run_id": run_id,
        "parent_run_id": None,
        "span": span,
        "start_time": span.start_time / 1e9,
    }
    assert end.pop("span").context == span.context  # on_end gets the SDK's ReadableSpan snapshot
    assert end == {
        "response": LLMResponse(
            content="Hi there",
            usage=Usage(prompt_tokens=12, completion_tokens=33, total_tokens=45),
            model="gpt-4o-2024-08-06",
            finish_reason="stop",
            tool_calls=[],
            raw=raw,
            cost=pytest.approx((12 * 2.5 + 33 * 10.0) / 1e6),
            id="chatcmpl-1",
        ),
        "attempts": None,
        "operation": "chat",
        "model": "gpt-4o",
        "run_id": run_id,
        "parent_run_id": None,
        "start_time": span.start_time / 1e9,
        "end_time": span.end_time / 1e9,
        "duration_ms": (span.end_time - span.start_time) / 1e6,
    }
    assert otel.span_processor._spans == {}


@pytest.mark.parametrize(("prompt", "length"), [("Hello!", 6), ("Привет!", 7), ("", 0)])
def test_prompt_is_last_user_message_text(otel: Otel, prompt: str, length: int) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, prompt=prompt)
    assert len(cb.events[0][1]["prompt"]) == length


def test_full_content_reaches_callbacks_but_not_the_exported_span(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, prompt="secret prompt", answer="secret answer")
    assert cb.events[0][1]["prompt"] == "secret prompt"
    assert cb.events[1][1]["response"].content == "secret answer"
    (exported,) = otel.spans.get_finished_spans()
    assert "secret" not in json.dumps(dict(exported.attributes or {}), default=str)


def test_span_of_another_instrumentation_read_from_attributes(otel: Otel) -> None:
    """No payload: content from captured gen_ai.*.messages JSON, usage at end, cost priced."""
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, payload=False, capture=True, prompt="Привет!", answer="Здравствуйте")
    (start_name, start), (end_name, end) = cb.events
    assert (start_name, start["prompt"], start["invocation_params"]) == ("on_llm_start", "Привет!", {})
    assert start["messages"][-1] == text_message("user", "Привет!")
    assert end_name == "on_llm_end"
    assert end["response"] == LLMResponse(
        content="Здравствуйте",
        usage=Usage(prompt_tokens=12, completion_tokens=33, total_tokens=45),
        model="gpt-4o-2024-08-06",
        finish_reason="stop",
        raw=None,
        cost=pytest.approx(0.00036),
        id="chatcmpl-1",
    )


def test_span_without_content_gives_empty_strings_and_unknown_usage(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, payload=False, capture=False, end_attrs={})
    assert cb.events[0][1]["prompt"] == ""
    response = cb.events[1][1]["response"]
    # No usage reported: zeros for arithmetic, known=False, and no cost estimated from zero tokens.
    unknown = Usage(known=False)
    assert response == LLMResponse(content="", usage=unknown, model="gpt-4o", finish_reason=None, cost=None)
    assert (unknown.total_tokens, unknown.input_tokens, unknown.output_tokens) == (0, 0, 0)
    assert LLMResponse().usage == unknown


def test_reported_zero_usage_is_known(otel: Otel) -> None:
    cb = Recorder()
    attrs = {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0}
    only_input = {"gen_ai.usage.input_tokens": 7}
    not_counts = {"gen_ai.usage.input_tokens": "7", "gen_ai.usage.output_tokens": True}
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, payload=False, end_attrs=attrs)
        chat_call(otel.tracer, payload=False, end_attrs=only_input)
        chat_call(otel.tracer, payload=False, end_attrs=not_counts)
    ends = [kw["response"] for name, kw in cb.events if name == "on_llm_end"]
    assert [(r.usage, r.cost) for r in ends] == [
        (Usage(), 0.0),
        (Usage(prompt_tokens=7, total_tokens=7), pytest.approx(7 * 2.5e-6)),
        (Usage(known=False), None),
    ]


def test_usage_cost_attribute_wins_and_tool_calls_are_listed(otel: Otel) -> None:
    cb = Recorder()
    tracer = otel.tracer
    p = Payload()
    p.input_messages = [text_message("user", "weather?")]
    with use_scope(otel.scope(cb)), payload_during(p):
        span = tracer.start_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"})
    span.set_attributes(
        {
            "gen_ai.usage.cost": 0.5,
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.response.finish_reasons": ["tool_calls"],
        }
    )
    p.output_messages = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}],
        }
    ]
    with payload_during(p):
        span.end()
    response = cb.events[1][1]["response"]
    assert (response.content, response.cost, response.finish_reason, response.usage.total_tokens) == (
        "",
        0.5,
        "tool_calls",
        3,
    )
    assert response.tool_calls == [{"id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}]


def test_error_goes_to_on_error_not_on_llm_end(otel: Otel) -> None:
    class Boom(Exception):
        pass

    cb = Recorder()
    error = Boom("rate limited")
    with use_scope(otel.scope(cb)):
        span = chat_call(otel.tracer, error=error, end_attrs={"rlm.request.attempts": 3})
    assert cb.names == ["on_llm_start", "on_error"]
    kwargs = cb.events[1][1]
    assert kwargs["error"] is error
    assert (kwargs["error_type"], kwargs["attempts"], kwargs["operation"], kwargs["model"]) == (
        "test_error_goes_to_on_error_not_on_llm_end.<locals>.Boom",
        3,
        "chat",
        "gpt-4o",
    )
    assert kwargs["run_id"] == format_span_id(span.context.span_id)
    assert kwargs["duration_ms"] >= 0


def test_error_reconstructed_from_exception_event_without_payload(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, payload=False, error=ValueError("bad request"))
    error = cb.events[1][1]["error"]
    assert isinstance(error, SpanError)
    assert (error.error_type, error.message, str(error)) == (
        "ValueError",
        "bad request",
        "ValueError: bad request",
    )


def test_error_reconstructed_from_error_type_only(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        span = otel.tracer.start_span("chat x", attributes={"gen_ai.operation.name": "chat"})
        span.set_attribute("error.type", "timeout")
        span.set_status(Status(StatusCode.ERROR, "took too long"))
        span.end()
    error = cb.events[1][1]["error"]
    assert (type(error), str(error)) == (SpanError, "timeout: took too long")


def test_tool_and_run_spans_nest_with_parent_ids(otel: Otel) -> None:
    cb = Recorder()
    tracer = otel.tracer
    run_p = Payload()
    run_p.input_messages = [{"role": "user", "parts": [{"type": "text", "content": "Summarise"}]}]
    run_p.response = "done!"
    with use_scope(otel.scope(cb)):
        with payload_during(run_p):
            run = tracer.start_span(
                "invoke_agent rlm",
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "rlm"},
            )
        from opentelemetry.trace import set_span_in_context

        ctx = set_span_in_context(run)
        tool_p = Payload()
        tool_p.tool_input, tool_p.tool_output = "print(1)", "1\n"
        with payload_during(tool_p):
            tool = tracer.start_span(
                "execute_tool repl",
                context=ctx,
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "repl"},
            )
        with payload_during(tool_p):
            tool.end()
        with payload_during(run_p):
            run.end()
    assert cb.names == ["on_run_start", "on_tool_start", "on_tool_end", "on_run_end"]
    run_id = format_span_id(run.context.span_id)
    assert cb.events[0][1]["prompt"] == "Summarise"
    assert cb.events[0][1]["agent_name"] == "rlm"
    assert (
        cb.events[1][1]["tool_name"],
        cb.events[1][1]["tool_input"],
        cb.events[1][1]["parent_run_id"],
    ) == ("repl", "print(1)", run_id)
    assert (cb.events[2][1]["tool_name"], cb.events[2][1]["tool_output"]) == ("repl", "1\n")
    assert cb.events[3][1]["result"] == "done!"
    assert cb.events[3][1]["run_id"] == run_id


def test_tool_span_from_attributes(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        span = otel.tracer.start_span(
            "execute_tool get_weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.arguments": '{"city": "Oslo"}',
            },
        )
        span.set_attribute("gen_ai.tool.call.result", "sunny")
        span.end()
    assert [(n, k.get("tool_input"), k.get("tool_output")) for n, k in cb.events] == [
        ("on_tool_start", '{"city": "Oslo"}', None),
        ("on_tool_end", None, "sunny"),
    ]


def test_non_genai_spans_and_unknown_operations_are_ignored(otel: Otel) -> None:
    cb = Recorder()
    with use_scope(otel.scope(cb)):
        otel.tracer.start_span("GET /").end()
        otel.tracer.start_span("x", attributes={"gen_ai.operation.name": "create_agent"}).end()
    assert cb.events == []
    assert otel.span_processor._spans == {}


def test_embeddings_prompt_from_request_input(otel: Otel) -> None:
    cb = Recorder()
    p = Payload()
    p.request = {"model": "text-embedding-3-small", "input": ["alpha", "beta"]}
    with use_scope(otel.scope(cb)), payload_during(p):
        span = otel.tracer.start_span(
            "embeddings m",
            attributes={
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": "text-embedding-3-small",
            },
        )
        span.set_attribute("gen_ai.usage.input_tokens", 1000)
        span.end()
    assert cb.events[0][1]["prompt"] == "alpha\nbeta"
    assert cb.events[1][1]["response"].cost == pytest.approx(0.00002)


def test_routing_two_scopes_and_global(otel: Otel) -> None:
    a, b, g = Recorder(), Recorder(), Recorder()
    otel.everywhere(g)
    with use_scope(otel.scope(a)):
        chat_call(otel.tracer, prompt="for a")
    with use_scope(otel.scope(b)):
        chat_call(otel.tracer, prompt="for b")
    chat_call(otel.tracer, prompt="no scope")
    assert [k["prompt"] for n, k in a.events if n == "on_llm_start"] == ["for a"]
    assert [k["prompt"] for n, k in b.events if n == "on_llm_start"] == ["for b"]
    assert [k["prompt"] for n, k in g.events if n == "on_llm_start"] == ["for a", "for b", "no scope"]


def test_same_callback_in_global_and_scope_is_called_once(otel: Otel) -> None:
    cb = Recorder()
    otel.everywhere(cb)
    with use_scope(otel.scope(cb, cb)):
        chat_call(otel.tracer)
    assert cb.names == ["on_llm_start", "on_llm_end"]


def test_routing_is_decided_at_start(otel: Otel) -> None:
    """A span started in scope A and ended elsewhere still reaches A's callbacks only."""
    a, b = Recorder(), Recorder()
    with use_scope(otel.scope(a)):
        span = otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
    with use_scope(otel.scope(b)):
        span.end()
    assert a.names == ["on_llm_start", "on_llm_end"]
    assert b.names == []


def test_fixed_callbacks_of_a_processor(otel: Otel) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from rlm_toolkit.callbacks import CallbackSpanProcessor

    cb = Recorder()
    tp = TracerProvider()
    tp.add_span_processor(CallbackSpanProcessor([cb]))
    chat_call(tp.get_tracer("t"))
    assert cb.names == ["on_llm_start", "on_llm_end"]


def test_many_scopes_grow_nothing(otel: Otel) -> None:
    """10,000 scopes with distinct callbacks: the per-span dict ends empty, callbacks are freed."""
    import gc

    from rlm_toolkit.callbacks import _dispatch

    plans_before = len(_dispatch.PLANS)
    refs: list[weakref.ref[Recorder]] = []
    for i in range(10_000):
        cb = Recorder()
        with use_scope(otel.scope(cb)):
            span = otel.tracer.start_span(
                "chat m", kind=SpanKind.CLIENT, attributes={"gen_ai.operation.name": "chat"}
            )
            if i % 1000 == 0:
                assert len(otel.span_processor._spans) == 1
            span.end()
        assert cb.names == ["on_llm_start", "on_llm_end"]
        if i % 100 == 0:
            refs.append(weakref.ref(cb))
        del cb
    otel.spans.clear()
    gc.collect()
    assert otel.span_processor._spans == {}
    assert all(ref() is None for ref in refs)
    assert len(_dispatch.PLANS) <= plans_before + 1
    assert otel.span_processor.pending_tasks() == []


def test_internal_error_is_contained_outside_strict_mode(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlm_toolkit.callbacks import _extract

    def broken(*args: Any) -> Any:
        raise RuntimeError("bug in the bridge")

    cb = Recorder()
    monkeypatch.setattr(_extract, "start_event", broken)
    monkeypatch.setattr(_extract, "end_event", broken)
    with use_scope(otel.scope(cb)):
        with pytest.raises(RuntimeError, match="bug in the bridge"):  # strict under pytest
            otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
        monkeypatch.setenv("RLM_TOOLKIT_STRICT", "0")
        span = otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
        span.end()
    assert cb.events == []
    assert len(otel.spans.get_finished_spans()) == 1


def test_span_error_is_public_and_round_trips_through_pickle() -> None:
    import pickle

    import rlm_toolkit.callbacks as public

    assert public.SpanError is SpanError and "SpanError" in public.__all__
    copy = pickle.loads(pickle.dumps(SpanError("RateLimitError", "slow down")))
    assert (type(copy), copy.error_type, copy.message, str(copy)) == (
        SpanError,
        "RateLimitError",
        "slow down",
        "RateLimitError: slow down",
    )
