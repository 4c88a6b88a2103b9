"""The Anthropic pure tables against every recorded exchange in ``anthropic-genai``.

Each recorded request body goes through the request table; each recorded response is replayed
through the real SDK (vcrpy) and the typed result goes through the response table or the stream
accumulator. Expected values are read from the recording itself.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anthropic
import pytest

from rlm_toolkit.instrumentation.anthropic._events import MessageEvents
from rlm_toolkit.instrumentation.anthropic._request import (
    input_messages,
    request_attributes,
    request_model,
    system_instructions,
    tool_definitions,
)
from rlm_toolkit.instrumentation.anthropic._response import (
    count_tokens_response,
    error_type,
    finish_reason,
    message_response,
)

from .cassettes import Exchange, all_exchanges, replay, replaying

EXCHANGES = all_exchanges()


def _id(exchange: Exchange) -> str:
    return f"{exchange.cassette}[{exchange.index}]"


class Inv:
    """The invocation fields the tables fill, and the token hook of a stream handler."""

    def __init__(self, wants_content: bool = True, wants_tokens: bool = True) -> None:
        self.wants_content = wants_content
        self.wants_tokens = wants_tokens
        self.response_model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached_input_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.cache_write_1h_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.response_attributes: dict[str, Any] | None = None
        self.output_messages: list[dict[str, Any]] | None = None
        self.tokens: list[tuple[int, str]] = []

    def token(self, index: int, text: str) -> None:
        self.tokens.append((index, text))

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("wants_content", "wants_tokens", "tokens")}


MAPPED = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def _expected_usage(usage: dict[str, Any]) -> dict[str, Any]:
    read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    return {
        "input_tokens": usage["input_tokens"] + (read or 0) + (write or 0),
        "output_tokens": usage["output_tokens"],
        "cached_input_tokens": read,
        "cache_write_tokens": write,
        "cache_write_1h_tokens": (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens"),
        "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("thinking_tokens"),
    }


def _expected_parts(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "text":
            parts.append({"type": "text", "content": block["text"]})
        elif block["type"] == "thinking":
            parts.append({"type": "reasoning", "content": block["thinking"]})
        elif block["type"] in ("tool_use", "server_tool_use"):
            parts.append(
                {"type": "tool_call", "id": block["id"], "name": block["name"], "arguments": block["input"]}
            )
        else:
            parts.append({"type": block["type"]})
    return parts


@pytest.mark.parametrize("exchange", EXCHANGES, ids=_id)
def test_request_attributes_equal_the_recorded_body(exchange: Exchange) -> None:
    body = exchange.request
    expected: dict[str, Any] = {"gen_ai.request.max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if name in body:
            expected[f"gen_ai.request.{name}"] = body[name]
    if "stop_sequences" in body:
        expected["gen_ai.request.stop_sequences"] = tuple(body["stop_sequences"])
    if body.get("stream"):
        expected["gen_ai.request.stream"] = True
    if "thinking" in body:
        expected["rlm.anthropic.thinking.type"] = body["thinking"]["type"]
        expected["rlm.anthropic.thinking.budget_tokens"] = body["thinking"]["budget_tokens"]
    # As a 0.x app passed them (all kwargs) and as a 1.17+ app must (sampling in extra_body).
    assert request_attributes(body, {}) == expected
    assert request_attributes(exchange.kwargs(), {}) == expected
    assert request_model(exchange.kwargs()) == body["model"]
    messages = input_messages(body["messages"])
    assert [m["role"] for m in messages] == [m["role"] for m in body["messages"]]
    for message, recorded in zip(messages, body["messages"], strict=True):
        content = recorded["content"]
        if isinstance(content, str):
            assert message["parts"] == [{"type": "text", "content": content}]
        else:
            assert [p["type"] for p in message["parts"]] == [
                {"text": "text", "tool_use": "tool_call", "tool_result": "tool_call_response"}.get(
                    b["type"], b["type"]
                )
                for b in content
            ]
    tools = tool_definitions(body.get("tools"))
    if "tools" in body:
        assert tools is not None and [t["name"] for t in tools] == [t["name"] for t in body["tools"]]
        for tool, recorded in zip(tools, body["tools"], strict=True):
            assert tool.get("parameters") == recorded.get("input_schema")
            assert tool["type"] == recorded.get("type", "function")
    else:
        assert tools is None


def test_request_edge_cases() -> None:
    from anthropic import NOT_GIVEN, omit

    assert request_attributes({"max_tokens": NOT_GIVEN, "top_k": omit, "stream": False}, {}) == {}
    assert request_attributes({"temperature": 0.2, "extra_body": {"temperature": 0.9}}, {"x": 1}) == {
        "x": 1,
        "gen_ai.request.temperature": 0.9,
    }
    assert request_attributes({"thinking": {"type": "adaptive"}, "max_tokens": True}, {}) == {
        "rlm.anthropic.thinking.type": "adaptive"
    }
    assert request_model({"model": "a", "extra_body": {"model": "b"}}) == "b"
    assert system_instructions("Be brief.") == [{"type": "text", "content": "Be brief."}]
    assert system_instructions([{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]) == [
        {"type": "text", "content": "A"},
        {"type": "text", "content": "B"},
    ]
    assert system_instructions(NOT_GIVEN) is None
    result = input_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "18C"}]}
                ],
            }
        ]
    )
    assert result == [
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "t1", "response": "18C"}]}
    ]


JSON_OK = [e for e in EXCHANGES if not e.stream and e.status == 200]
STREAMS = [e for e in EXCHANGES if e.stream]
ERRORS = [e for e in EXCHANGES if e.status >= 400]


@pytest.mark.parametrize("exchange", JSON_OK, ids=_id)
def test_message_response_equals_the_recording(exchange: Exchange) -> None:
    recorded = exchange.json()
    message = replay(exchange)
    inv = Inv()
    message_response(inv, message)
    finish = MAPPED[recorded["stop_reason"]]
    assert inv.fields() == {
        "response_model": recorded["model"],
        **_expected_usage(recorded["usage"]),
        "response_attributes": {
            "gen_ai.response.id": recorded["id"],
            "gen_ai.response.finish_reasons": (finish,),
        },
        "output_messages": [
            {"role": "assistant", "parts": _expected_parts(recorded["content"]), "finish_reason": finish}
        ],
    }
    quiet = Inv(wants_content=False)
    message_response(quiet, message)
    assert quiet.output_messages is None and quiet.input_tokens == inv.input_tokens


def _recorded_stream(exchange: Exchange) -> dict[str, Any]:
    """What a stream's recording says its span should carry."""
    events = exchange.events()
    start = next(e for e in events if e["type"] == "message_start")["message"]
    usage = dict(start["usage"])
    stop_reason = None
    for event in events:
        if event["type"] == "message_delta":
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
            stop_reason = event["delta"]["stop_reason"]
    text = "".join(
        e["delta"]["text"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )
    finish = MAPPED[stop_reason] if stop_reason else "error"
    return {
        "response_model": start["model"],
        **_expected_usage(usage),
        "response_attributes": {
            "gen_ai.response.id": start["id"],
            "gen_ai.response.finish_reasons": (finish,),
        },
        "output_messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": finish}
        ],
    }


@pytest.mark.parametrize("exchange", STREAMS, ids=_id)
def test_stream_accumulator_equals_the_recording(exchange: Exchange) -> None:
    events = replay(exchange)
    assert [e.type for e in events] == [e["type"] for e in exchange.events() if e["type"] != "ping"]
    inv = Inv()
    handler = MessageEvents(inv)  # type: ignore[arg-type]
    for event in events:
        handler.on_chunk(event)
    handler.finish(inv)  # type: ignore[arg-type]
    expected = _recorded_stream(exchange)
    assert inv.fields() == expected
    assert handler.count == len(events) and handler.stopped
    texts = [e["delta"]["text"] for e in exchange.events() if e["type"] == "content_block_delta"]
    assert inv.tokens == list(enumerate(t for t in texts if t))


@pytest.mark.parametrize("exchange", [e for e in STREAMS if e.index == 0], ids=_id)
def test_the_stream_helpers_derived_events_are_not_counted_twice(exchange: Exchange) -> None:
    """``messages.stream()`` yields raw and derived events (``text``, the snapshot's
    ``message_stop``): the accumulator gives the same answer as on the raw stream."""
    with replaying(exchange.cassette) as client:
        messages: Any = client.beta.messages if exchange.beta else client.messages
        kwargs = {k: v for k, v in exchange.kwargs().items() if k != "stream"}
        with messages.stream(**kwargs) as stream:
            events = list(stream)
    assert "text" in {e.type for e in events}
    inv = Inv()
    handler = MessageEvents(inv)  # type: ignore[arg-type]
    for event in events:
        handler.on_chunk(event)
    handler.finish(inv)  # type: ignore[arg-type]
    assert inv.fields() == _recorded_stream(exchange)
    assert len(inv.tokens) == len([e for e in events if e.type == "text"])


@pytest.mark.parametrize("exchange", STREAMS[:1], ids=_id)
def test_a_stream_closed_early_keeps_what_it_saw_counted_once(exchange: Exchange) -> None:
    events = replay(exchange)
    recorded_start = exchange.events()[0]["message"]
    first_delta = next(i for i, e in enumerate(events) if e.type == "content_block_delta")
    inv = Inv()
    handler = MessageEvents(inv)  # type: ignore[arg-type]
    for event in events[: first_delta + 1]:
        handler.on_chunk(event)
    handler.finish(inv)  # type: ignore[arg-type]
    # The placeholder output count of message_start, once; no finish reason: the stream did not end.
    assert inv.output_tokens == recorded_start["usage"]["output_tokens"]
    assert inv.input_tokens == recorded_start["usage"]["input_tokens"]
    assert inv.response_attributes == {"gen_ai.response.id": recorded_start["id"]}
    assert inv.output_messages == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": events[first_delta].delta.text}],
            "finish_reason": "error",
        }
    ]
    assert not handler.stopped
    # Past message_delta: its cumulative count replaces the placeholder (never start + delta).
    for event in events[first_delta + 1 :]:
        handler.on_chunk(event)
    handler.finish(inv)  # type: ignore[arg-type]
    final = [e for e in exchange.events() if e["type"] == "message_delta"][-1]
    assert inv.output_tokens == final["usage"]["output_tokens"]


@pytest.mark.parametrize("exchange", ERRORS, ids=_id)
def test_error_type_is_the_envelopes(exchange: Exchange) -> None:
    error = replay(exchange)
    assert isinstance(error, anthropic.APIStatusError)
    assert error_type(error) == exchange.json()["error"]["type"]


def test_error_type_without_an_envelope() -> None:
    assert error_type(ValueError("x")) == "ValueError"

    bodied = Exception("in-band error event")
    bodied.body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}  # type: ignore[attr-defined]
    assert error_type(bodied) == "overloaded_error"


def test_finish_reasons_and_count_tokens() -> None:
    for stop_reason, finish in {
        **MAPPED,
        "pause_turn": "stop",
        "model_context_window_exceeded": "length",
    }.items():
        assert finish_reason(stop_reason) == finish
    assert finish_reason("something_new") == "something_new"
    assert finish_reason(None) == "error"
    inv = Inv()

    class Count:
        input_tokens = 42

    count_tokens_response(inv, Count())
    assert inv.input_tokens == 42 and inv.output_tokens is None


def test_usage_with_cache_and_thinking_counts() -> None:
    """A cache hit (none is recorded): input is uncached + read + write; thinking tokens are reasoning."""
    message = anthropic.types.Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "hi"},
            ],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 200,
                "output_tokens": 50,
                "output_tokens_details": {"thinking_tokens": 30},
            },
        }
    )
    inv = Inv()
    message_response(inv, message)
    assert (inv.input_tokens, inv.cached_input_tokens, inv.cache_write_tokens) == (1210, 1000, 200)
    assert (inv.output_tokens, inv.reasoning_tokens) == (50, 30)
    assert inv.output_messages == [
        {
            "role": "assistant",
            "parts": [{"type": "reasoning", "content": "hmm"}, {"type": "text", "content": "hi"}],
            "finish_reason": "length",
        }
    ]


def test_the_tables_do_not_import_anthropic() -> None:
    """Nothing of ours imports anthropic before the app does: the tables, the price table and the
    offline server (Messages API included) run without it."""
    code = (
        "import sys, rlm_toolkit, rlm_toolkit.testing, rlm_toolkit._anthropic_prices; "
        "import rlm_toolkit.instrumentation.anthropic._events, rlm_toolkit.instrumentation.anthropic._response; "
        "from rlm_toolkit.testing import OpenAIServer; OpenAIServer().start().stop(); "
        "print('anthropic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
