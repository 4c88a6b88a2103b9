"""Chat completions over real HTTP to the offline server: span, metric and event shapes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


def common(server: OpenAIServer, api: str, model: str = "gpt-4o", operation: str = "chat") -> dict[str, Any]:
    url = urlparse(server.base_url)
    return {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "server.address": url.hostname,
        "server.port": url.port,
        "rlm.openai.api": api,
        "rlm.request.attempts": 1,
    }


def content_attrs(capture: bool, reply: str, finish: str = "stop") -> dict[str, Any]:
    if not capture:
        return {}
    return {
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]},
            ],
            separators=(",", ":"),
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": reply}], "finish_reason": finish}],
            separators=(",", ":"),
        ),
    }


def usage_attrs(response: Any) -> dict[str, Any]:
    from rlm_toolkit.pricing import estimate_cost

    out = {
        "gen_ai.usage.input_tokens": response.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": response.usage.completion_tokens,
    }
    # Reported zeros are kept (issue #11): the server reports both details.
    prompt, completion = response.usage.prompt_tokens_details, response.usage.completion_tokens_details
    if prompt is not None and prompt.cached_tokens is not None:
        out["gen_ai.usage.cache_read.input_tokens"] = prompt.cached_tokens
    if completion is not None and completion.reasoning_tokens is not None:
        out["gen_ai.usage.reasoning.output_tokens"] = completion.reasoning_tokens
    cost = estimate_cost(
        response.model,
        input_tokens=response.usage.prompt_tokens,
        output_tokens=response.usage.completion_tokens,
        cached_input_tokens=0,
    )
    if cost is not None:
        out["gen_ai.usage.cost"] = cost
    return out


def test_chat_sync_whole_shape(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("Hi!")
    response = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, temperature=0.5, max_tokens=20, seed=7, stop="END", top_p=0.9
    )
    span = instrumented.span()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        **common(server, "chat.completions.create"),
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.top_p": 0.9,
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.response.service_tier": response.service_tier,
        "openai.response.system_fingerprint": response.system_fingerprint,
        **usage_attrs(response),
        **content_attrs(capture, "Hi!"),
    }
    # the API key never reaches telemetry
    assert "sk-test-secret" not in json.dumps(dict(span.attributes or {}))

    metrics = instrumented.metrics()
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": response.model,
        "server.address": "127.0.0.1",
        "server.port": urlparse(server.base_url).port,
    }
    assert tuple(duration.explicit_bounds) == (
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    )  # fmt: skip
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == response.usage.prompt_tokens
    assert tokens["output"].sum == response.usage.completion_tokens
    assert tokens["input"].explicit_bounds[-1] == 67108864
    details = instrumented.logs("gen_ai.client.inference.operation.details")
    assert len(details) == (1 if capture else 0)
    if capture:
        attrs = dict(details[0].attributes)
        assert attrs["gen_ai.output.messages"][0]["parts"][0]["content"] == "Hi!"
        assert details[0].span_id == span.context.span_id


async def test_chat_async(
    instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("Hi!")
    response = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, n=2)
    span = instrumented.span()
    assert dict(span.attributes or {}) == {
        **common(server, "chat.completions.create"),
        "gen_ai.request.choice.count": 2,
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": ("stop", "stop"),
        "openai.response.service_tier": response.service_tier,
        "openai.response.system_fingerprint": response.system_fingerprint,
        **usage_attrs(response),
        **(
            {
                **content_attrs(capture, "Hi!"),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": c.message.content}],
                            "finish_reason": "stop",
                        }
                        for c in response.choices
                    ],
                    separators=(",", ":"),
                ),
            }
            if capture
            else {}
        ),
    }


def test_tool_calls_and_tool_definitions(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
        }
    ]
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=tools)
    call = response.choices[0].message.tool_calls[0]
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    if not capture:
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output.messages", "gen_ai.tool")) for k in attrs)
        return
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object"},
        }
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": '{"city": "Paris"}'}
            ],
            "finish_reason": "tool_calls",
        }
    ]


def test_tool_response_message_shape(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("Sunny")
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    client.chat.completions.create(model="gpt-4o", messages=history)
    attrs = dict(instrumented.span().attributes or {})
    if capture:
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "call_1", "name": "w", "arguments": "{}"}],
            },
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
        ]
    else:
        assert "gen_ai.input.messages" not in attrs


def test_generator_messages_reach_the_sdk_intact(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("ok")
    consumed: list[int] = []

    def messages() -> Any:
        for i, m in enumerate(MESSAGES):
            consumed.append(i)
            yield m

    client.chat.completions.create(model="gpt-4o", messages=messages())
    assert consumed == [0, 1]  # read once, by the SDK
    sent = server.requests[-1].body
    assert sent["messages"] == MESSAGES
    attrs = dict(instrumented.span().attributes or {})
    if capture:
        assert attrs["gen_ai.input.messages"] == content_attrs(True, "ok")["gen_ai.input.messages"]
    else:
        assert "gen_ai.input.messages" not in attrs


def test_error_404_propagates_unchanged(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_fault("not_found")
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    raised = info.value
    span = instrumented.span()
    assert span.status.status_code is StatusCode.ERROR
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "NotFoundError"
    assert attrs["http.response.status_code"] == 404
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "openai.NotFoundError"
    assert event.attributes["exception.message"] == str(raised)
    # traceback intact: the SDK frame that raised is still in it
    frames = []
    tb = raised.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "request"
    (duration,) = instrumented.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "NotFoundError"


def test_with_raw_response(instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    server.queue_reply("raw")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    assert completion.choices[0].message.content == "raw"
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["rlm.openai.api"] == "chat.completions.create"


def test_parse_helper(instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    server.queue_reply('{"value": 4}')
    result = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)
    assert result.choices[0].message.parsed == Answer(value=4)
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["rlm.openai.api"] == "chat.completions.parse"
    assert attrs["gen_ai.output.type"] == "json"
    assert attrs["gen_ai.response.id"] == result.id


def test_legacy_completions(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("done")
    response = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say done", max_tokens=5)
    span = instrumented.span()
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert attrs["gen_ai.response.finish_reasons"] == (response.choices[0].finish_reason,)
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens
    if capture:
        assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [
            {"type": "text", "content": "done"}
        ]


def test_embeddings(instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    response = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=8, encoding_format="float"
    )
    span = instrumented.span()
    assert span.name == "embeddings text-embedding-3-small"
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.request.encoding_formats"] == ("float",)
    assert attrs["gen_ai.embeddings.dimension.count"] == len(response.data[0].embedding) == 8
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in attrs
