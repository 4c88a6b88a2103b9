"""RLM.run / arun / stream over real HTTP to the offline server: shapes and calls made."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from rlm_toolkit.pricing import estimate_cost
from rlm_toolkit.runtime import RLM, RLMResult, Usage
from rlm_toolkit.testing import OpenAIServer

from .helpers import API_KEY, Recorder, TokenRecorder


def reference(server: OpenAIServer, prompt: str) -> Any:
    """What the offline model answers to ``prompt`` in a plain call (it is deterministic)."""
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}])


def bodies(server: OpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests]


def expected_result(ref: Any, trace_id: str | None) -> RLMResult:
    usage = Usage(
        prompt_tokens=ref.usage.prompt_tokens,
        completion_tokens=ref.usage.completion_tokens,
        total_tokens=ref.usage.total_tokens,
    )
    return RLMResult(
        answer=ref.choices[0].message.content,
        usage=usage,
        iterations=1,
        cost=estimate_cost("gpt-4o", input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
        model="gpt-4o",
        finish_reason="stop",
        trace_id=trace_id,
        error=None,
    )


def test_run_is_exactly_one_plain_call_with_the_prompt_as_the_only_message(server: OpenAIServer) -> None:
    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url=server.base_url)
    result = rlm.run("Hello!")
    assert bodies(server) == [{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}]
    server.reset()
    ref = reference(server, "Hello!")
    # No callbacks and no providers: nothing records a span, so there is no trace id.
    assert result == expected_result(ref, trace_id=None)
    assert result.content == result.answer != ""
    assert result.usage.total_tokens > 0
    assert result.cost is not None and result.cost > 0


def test_ten_runs_make_ten_calls(server: OpenAIServer) -> None:
    rlm = RLM.from_openai("gpt-4o", callbacks=[Recorder()], api_key=API_KEY, base_url=server.base_url)
    for i in range(10):
        rlm.run(f"Question {i}")
    assert [b["messages"] for b in bodies(server)] == [
        [{"role": "user", "content": f"Question {i}"}] for i in range(10)
    ]


def test_a_token_consumer_makes_run_stream_with_usage(server: OpenAIServer) -> None:
    tokens = TokenRecorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[tokens], api_key=API_KEY, base_url=server.base_url)
    result = rlm.run("Write a haiku about coding")
    assert bodies(server) == [
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "Write a haiku about coding"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ]
    server.reset()
    ref = reference(server, "Write a haiku about coding")
    assert result == expected_result(ref, trace_id=result.trace_id)
    assert len(tokens.tokens) > 1
    assert "".join(tokens.tokens) == result.answer
    # Tokens arrive between the LLM call's start and end, in order.
    names = tokens.names()
    first, last = names.index("on_token"), len(names) - 1 - names[::-1].index("on_token")
    assert names[:first] == ["on_run_start", "on_llm_start"]
    assert names[last + 1 :] == ["on_llm_end", "on_run_end"]
    indexes = [kw["index"] for kw in tokens.of("on_token")]
    assert indexes == sorted(set(indexes))  # in order, none repeated


async def test_arun_has_the_same_shape_as_run(server: OpenAIServer) -> None:
    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url=server.base_url)
    result = await rlm.arun("Hello!")
    assert bodies(server) == [{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}]
    server.reset()
    assert result == expected_result(reference(server, "Hello!"), trace_id=None)


async def test_arun_with_a_user_client_derives_the_async_client(server: OpenAIServer) -> None:
    recorder = Recorder()
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        rlm = RLM(client=client, model="gpt-4o", callbacks=[recorder])
        result = await rlm.arun("Hello!")
    assert isinstance(rlm.async_client, openai.AsyncOpenAI)
    assert str(rlm.async_client.base_url) == str(client.base_url)
    assert rlm.async_client.max_retries == 0
    assert result.answer != ""
    assert recorder.names() == ["on_run_start", "on_llm_start", "on_llm_end", "on_run_end"]


def test_stream_yields_the_answer_token_by_token_then_a_result(server: OpenAIServer) -> None:
    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url=server.base_url)
    stream = rlm.stream("Write a haiku about coding")
    assert stream.result is None
    tokens = list(stream)
    assert [b.get("stream") for b in bodies(server)] == [True]
    server.reset()
    ref = reference(server, "Write a haiku about coding")
    assert len(tokens) > 1
    assert "".join(tokens) == ref.choices[0].message.content
    assert stream.result == expected_result(ref, trace_id=None)
    assert list(stream) == []  # finished: iterating again yields nothing


def test_stream_closed_early_ends_with_the_text_so_far(server: OpenAIServer) -> None:
    recorder = Recorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url)
    with rlm.stream("Write a haiku about coding") as stream:
        first = next(stream)
    assert stream.result is not None
    assert stream.result.answer == first
    assert recorder.names() == ["on_run_start", "on_llm_start", "on_llm_end", "on_run_end"]
    assert recorder.of("on_run_end")[0]["result"] is stream.result


def test_direct_strategy_puts_context_into_the_user_message_of_one_call(server: OpenAIServer) -> None:
    # The default strategy makes a run with context a recursive one (tests/recursive); the
    # direct strategy stays available for small contexts.
    from rlm_toolkit.runtime._strategy import DirectStrategy

    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url=server.base_url, strategy=DirectStrategy())
    result = rlm.run("What colour is the sky?", context="The sky is green here.")
    assert [b["messages"] for b in bodies(server)] == [
        [{"role": "user", "content": "Context:\nThe sky is green here.\n\nQuestion: What colour is the sky?"}]
    ]
    assert result.iterations == 1


def test_callbacks_fire_with_no_opentelemetry_setup(server: OpenAIServer) -> None:
    recorder = Recorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url)
    result = rlm.run("Hello!")
    assert recorder.names() == ["on_run_start", "on_llm_start", "on_llm_end", "on_run_end"]
    run_start, llm_start, llm_end, run_end = (kw for _, kw in recorder.events)
    assert run_start["prompt"] == "Hello!"
    assert llm_start["prompt"] == "Hello!"
    assert llm_start["model"] == "gpt-4o"
    assert llm_end["response"].content == result.answer
    assert llm_end["response"].usage == result.usage
    assert run_end["result"] is result
    assert llm_start["parent_run_id"] == run_start["run_id"]
    # The private provider records spans, so the run has a trace id.
    assert result.trace_id is not None and len(result.trace_id) == 32


def test_two_rlms_see_only_their_own_calls(server: OpenAIServer) -> None:
    a, b = Recorder(), Recorder()
    rlm_a = RLM.from_openai("gpt-4o", callbacks=[a], api_key=API_KEY, base_url=server.base_url)
    rlm_b = RLM.from_openai("gpt-4o-mini", callbacks=[b], api_key=API_KEY, base_url=server.base_url)
    rlm_a.run("for a")
    rlm_b.run("for b")
    rlm_a.run("for a again")
    assert [kw["prompt"] for kw in a.of("on_llm_start")] == ["for a", "for a again"]
    assert [kw["prompt"] for kw in b.of("on_llm_start")] == ["for b"]
    assert {kw["model"] for kw in b.of("on_llm_start")} == {"gpt-4o-mini"}


def test_a_raising_callback_does_not_break_the_run(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(Recorder):
        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            raise RuntimeError("callback bug")

    good = Recorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[Broken(), good], api_key=API_KEY, base_url=server.base_url)
    result = rlm.run("Hello!")
    assert result.answer != ""
    assert good.names() == ["on_run_start", "on_llm_start", "on_llm_end", "on_run_end"]


def test_user_errors_propagate_unchanged(server: OpenAIServer) -> None:
    recorder = Recorder()
    server.queue_fault("bad_request")
    rlm = RLM.from_openai("gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url)
    with pytest.raises(openai.BadRequestError):
        rlm.run("Hello!")
    assert len(server.requests) == 1  # 400 is not retried
    with pytest.raises(TypeError, match="prompt must be a str, got int"):
        rlm.run(42)  # type: ignore[arg-type]


def test_stream_error_reaches_on_error_and_is_reraised(server: OpenAIServer) -> None:
    recorder = Recorder()
    server.queue_fault("cut_stream", after_chunks=3)
    rlm = RLM.from_openai("gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url)
    stream = rlm.stream("Write a haiku about coding")
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as info:  # the SDK's own error, unchanged
        for token in stream:
            received.append(token)
    assert received  # some tokens arrived before the cut
    # One on_error (the failure is told once), and the failed run still ends.
    assert recorder.names() == ["on_run_start", "on_llm_start", "on_error", "on_run_end"]
    assert recorder.of("on_error")[0]["error"] is info.value
    assert recorder.of("on_run_end")[0]["result"] is None
    assert recorder.of("on_run_end")[0]["error"] is info.value
    assert stream.result is None
    assert list(stream) == []  # finished for good


async def test_concurrent_aruns_of_two_rlms_stay_apart(server: OpenAIServer) -> None:
    import asyncio

    a, b = Recorder(), Recorder()
    rlm_a = RLM.from_openai("gpt-4o", callbacks=[a], api_key=API_KEY, base_url=server.base_url)
    rlm_b = RLM.from_openai("gpt-4o", callbacks=[b], api_key=API_KEY, base_url=server.base_url)
    results = await asyncio.gather(
        *(rlm.arun(f"{name} {i}") for i in range(3) for name, rlm in (("a", rlm_a), ("b", rlm_b)))
    )
    assert len(results) == 6 and all(r.answer for r in results)
    assert sorted(kw["prompt"] for kw in a.of("on_llm_start")) == ["a 0", "a 1", "a 2"]
    assert sorted(kw["prompt"] for kw in b.of("on_llm_start")) == ["b 0", "b 1", "b 2"]
    # Every LLM call is the child of its own run.
    runs = {kw["run_id"]: kw["prompt"] for kw in a.of("on_run_start")}
    assert {runs[kw["parent_run_id"]] for kw in a.of("on_llm_start")} == {"a 0", "a 1", "a 2"}
    assert all(runs[kw["parent_run_id"]] == kw["prompt"] for kw in a.of("on_llm_start"))


async def test_arun_streams_to_a_token_consumer_too(server: OpenAIServer) -> None:
    tokens = TokenRecorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[tokens], api_key=API_KEY, base_url=server.base_url)
    result = await rlm.arun("Write a haiku about coding")
    assert [(b.get("stream"), b.get("stream_options")) for b in bodies(server)] == [
        (True, {"include_usage": True})
    ]
    server.reset()
    assert result == expected_result(
        reference(server, "Write a haiku about coding"), trace_id=result.trace_id
    )
    assert len(tokens.tokens) > 1 and "".join(tokens.tokens) == result.answer
    names = tokens.names()
    assert names[:2] == ["on_run_start", "on_llm_start"] and names[-2:] == ["on_llm_end", "on_run_end"]
    assert set(names[2:-2]) == {"on_token"}
