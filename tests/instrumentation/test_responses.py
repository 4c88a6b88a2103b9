"""Responses API: plain, streamed, .parse(), .stream() helper; sync and async."""

from __future__ import annotations

import json

import openai
from pydantic import BaseModel

from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel


def test_responses_create(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("Bonjour")
    response = client.responses.create(
        model="gpt-4o", input="Say hello", instructions="French", max_output_tokens=50
    )
    span = instrumented.span()
    assert span.name == "chat gpt-4o"
    attrs = dict(span.attributes or {})
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.max_tokens": 50,
        "rlm.openai.api": "responses.create",
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": response.usage.input_tokens,
        "gen_ai.usage.output_tokens": response.usage.output_tokens,
    }
    assert {k: attrs.get(k) for k in expected} == expected
    if capture:
        assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "French"}]
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
        ]
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": "Bonjour"}], "finish_reason": "stop"}
        ]
    else:
        assert not [k for k in attrs if "messages" in k or "instructions" in k]


async def test_responses_stream_async(
    instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("streamed")
    stream = await aclient.responses.create(model="gpt-4o", input="go", stream=True)
    events = [e async for e in stream]
    final = events[-1].response
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["rlm.stream.chunk_count"] == len(events)
    assert attrs["gen_ai.response.id"] == final.id
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    if capture:
        assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [
            {"type": "text", "content": "streamed"}
        ]


def test_responses_tool_call(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply(tool_calls=[{"name": "f", "arguments": "{}"}])
    response = client.responses.create(
        model="gpt-4o",
        input="call f",
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    )
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    if capture:
        call = response.output[0]
        assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [
            {"type": "tool_call", "id": call.call_id, "name": "f", "arguments": "{}"}
        ]
        assert json.loads(attrs["gen_ai.tool.definitions"]) == [
            {"type": "function", "name": "f", "parameters": {"type": "object"}}
        ]


def test_responses_parse_and_stream_helper(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    class Answer(BaseModel):
        value: int

    server.queue_reply('{"value": 1}')
    parsed = client.responses.parse(model="gpt-4o", input="one", text_format=Answer)
    assert parsed.output_parsed == Answer(value=1)
    with client.responses.stream(model="gpt-4o", input="two") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    first, second = plain_instrumented.spans()
    assert dict(first.attributes or {})["rlm.openai.api"] == "responses.parse"
    assert dict(first.attributes or {})["gen_ai.output.type"] == "json"
    attrs = dict(second.attributes or {})
    assert attrs["rlm.openai.api"] == "responses.stream"
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["gen_ai.response.id"] == final.id


async def test_async_responses_stream_helper_break(
    plain_instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer
) -> None:
    async with aclient.responses.stream(model="gpt-4o", input="two") as stream:
        async for _ in stream:
            break
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.openai.api"] == "responses.stream"
    assert attrs["rlm.stream.end_reason"] == "closed"
