"""SDK pydantic objects passed back in requests (the normal tool-call loop, ``input += output``).

Users routinely append ``msg.tool_calls`` / ``msg`` / ``response.output`` to the next request.
Reading content from them must not fail (which would drop the call's span, metrics and callbacks)
and must not silently lose the content.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit.instrumentation.openai._request import as_mapping, chat_messages, responses_input
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _round_trip(client: openai.OpenAI, server: OpenAIServer, as_message: bool) -> tuple[Any, list[Any]]:
    server.queue_reply(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    msg = first.choices[0].message
    assert msg.tool_calls and type(msg.tool_calls[0]).__name__ == "ChatCompletionMessageFunctionToolCall"
    if as_message:
        messages.append(msg)  # the pydantic ChatCompletionMessage itself
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": msg.tool_calls})
    call = msg.tool_calls[0]
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    server.queue_reply("It is sunny.")
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is sunny."
    return call, messages


def _expected_input(call_id: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": '{"city": "Paris"}'}
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": "sunny, 21C"}]},
    ]


@pytest.mark.parametrize("as_message", [False, True], ids=["tool_calls_list", "message_object"])
def test_tool_call_round_trip(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool, as_message: bool
) -> None:
    call, _ = _round_trip(client, server, as_message)
    spans = instrumented.spans()
    assert [s.name for s in spans] == ["chat gpt-4o", "chat gpt-4o"]
    attrs = dict(spans[1].attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    durations = instrumented.metrics()["gen_ai.client.operation.duration"]
    assert sum(p.count for p in durations) == 2
    if capture:
        assert json.loads(attrs["gen_ai.input.messages"]) == _expected_input(call.id)
        assert json.loads(attrs["gen_ai.tool.definitions"]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
            }
        ]
    else:
        assert "gen_ai.input.messages" not in attrs


@pytest.fixture
def with_callback(otel: Otel) -> Iterator[list[dict[str, Any]]]:
    from rlm_toolkit.callbacks import BaseCallback

    seen: list[dict[str, Any]] = []

    class Seen(BaseCallback):  # type: ignore[misc]
        def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
            seen.append({"event": "start", "prompt": prompt, "messages": kwargs.get("messages")})

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            seen.append({"event": "end", "text": response.text})

    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        callbacks=[Seen()],
    )
    yield seen
    rlm_toolkit.uninstrument()


def test_tool_call_round_trip_with_callback(
    otel: Otel, with_callback: list[dict[str, Any]], client: openai.OpenAI, server: OpenAIServer
) -> None:
    call, _ = _round_trip(client, server, as_message=False)
    assert [s.name for s in otel.spans()] == ["chat gpt-4o", "chat gpt-4o"]
    assert [e["event"] for e in with_callback] == ["start", "end", "start", "end"]
    second_start = with_callback[2]
    assert second_start["prompt"] == "Weather in Paris?"
    assert second_start["messages"] == _expected_input(call.id)
    assert with_callback[3]["text"] == "It is sunny."
    # capture is off: the exported span carries no content even though the callback saw it
    assert "gen_ai.input.messages" not in dict(otel.spans()[1].attributes or {})


def test_responses_input_plus_output(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(model="gpt-4o", input=items)
    server.queue_reply("Sunny there.")
    second = client.responses.create(model="gpt-4o", input="And now say it nicely")
    items += first.output
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1
    items.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"})
    items += second.output  # a ResponseOutputMessage object
    server.queue_reply("Done.")
    client.responses.create(model="gpt-4o", input=items)
    spans = instrumented.spans()
    assert len(spans) == 3
    attrs = dict(spans[2].attributes or {})
    if capture:
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": calls[0].call_id,
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    }
                ],
            },
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": calls[0].call_id, "response": "sunny"}],
            },
            {"role": "assistant", "parts": [{"type": "text", "content": "Sunny there."}]},
        ]
    else:
        assert "gen_ai.input.messages" not in attrs


class _Plain:
    """A non-pydantic object with public attributes (``vars()`` fallback)."""

    def __init__(self) -> None:
        self.role = "user"
        self.content = "hi"
        self._secret = "hidden"


def test_normaliser_fallbacks() -> None:
    assert as_mapping(_Plain()) == {"role": "user", "content": "hi"}
    assert as_mapping(object()) is None
    assert as_mapping(3) is None
    assert as_mapping("text") is None
    # unreadable items are skipped, readable ones kept
    assert chat_messages([object(), _Plain(), 7]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert responses_input([None, _Plain()]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
