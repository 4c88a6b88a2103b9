"""The offline server's Messages API against recorded Anthropic traffic (``anthropic-genai``).

For each recorded shape (a JSON message with text, thinking or tool_use blocks; an SSE stream;
an error envelope) the same request goes to our server, with the recorded text and tool calls
scripted as its reply, and the test asserts: the same JSON keys and value types, the same SSE
event types in the same order, and that the real SDK parses both the same way. Recordings made
at different API versions differ in a few optional fields; those are listed in ``OPTIONAL``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from rlm_toolkit.testing import OpenAIServer

from .cassettes import Exchange, all_exchanges, replay, replaying

EXCHANGES = all_exchanges()
#: Keys that some recordings have and others lack (API versions, beta-only nulls), so a key in
#: only one of the two answers is fine when it is one of these; a key both have must match.
OPTIONAL = {
    "cache_creation": "added to usage by later API versions (older recordings lack it)",
    "inference_geo": "added to usage by later API versions",
    "service_tier": "added to usage by later API versions",
    "stop_details": "a null added to messages and message_delta by later API versions",
    "container": "a null on beta answers only",
    "diagnostics": "a null on beta answers only",
    "input_tokens": "message_delta usage repeats the input counts on non-beta streams only",
    "cache_creation_input_tokens": "message_delta usage: as input_tokens",
    "cache_read_input_tokens": "message_delta usage: as input_tokens",
}
#: Block types the offline model produces (recorded server tools are not simulated).
PRODUCED = {"text", "thinking", "tool_use"}


def _id(exchange: Exchange) -> str:
    return f"{exchange.cassette}[{exchange.index}]"


def shape_differences(ours: Any, recorded: Any, path: str = "$") -> Iterator[str]:
    """Where ``ours`` and ``recorded`` differ in keys or value types (values themselves may differ)."""
    if isinstance(recorded, dict) and isinstance(ours, dict):
        for key in sorted(set(ours) | set(recorded)):
            if key not in ours or key not in recorded:
                if key not in OPTIONAL:
                    yield f"{path}.{key}: only in {'ours' if key in ours else 'the recording'}"
            else:
                yield from shape_differences(ours[key], recorded[key], f"{path}.{key}")
    elif isinstance(recorded, list) and isinstance(ours, list):
        if len(ours) != len(recorded):
            yield f"{path}: {len(ours)} items, recorded {len(recorded)}"
        for index, (a, b) in enumerate(zip(ours, recorded, strict=False)):
            yield from shape_differences(a, b, f"{path}[{index}]")
    elif type(ours) is not type(recorded):
        yield f"{path}: {type(ours).__name__}, recorded {type(recorded).__name__}"


def _script(server: OpenAIServer, content: list[dict[str, Any]]) -> None:
    """Queue the recorded answer's text and tool calls as the offline model's reply."""
    text = "".join(b["text"] for b in content if b["type"] == "text") or None
    tools = [
        {"name": b["name"], "arguments": json.dumps(b["input"]), "id": b["id"]}
        for b in content
        if b["type"] == "tool_use"
    ]
    server.queue_reply(text, tool_calls=tools or None)


def _recorded_content(exchange: Exchange) -> list[dict[str, Any]]:
    if not exchange.stream:
        return exchange.json()["content"]  # type: ignore[no-any-return]
    text = "".join(e["delta"]["text"] for e in exchange.events() if e["type"] == "content_block_delta")
    return [{"type": "text", "text": text}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[anthropic.Anthropic]:
    server.reset()
    with anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0) as c:
        yield c


def _messages(client: anthropic.Anthropic, exchange: Exchange) -> Any:
    return client.beta.messages if exchange.beta else client.messages


JSON_OK = [
    e
    for e in EXCHANGES
    if not e.stream and e.status == 200 and {b["type"] for b in e.json()["content"]} <= PRODUCED
]
STREAMS = [e for e in EXCHANGES if e.stream and e.index == 0]
ERRORS = [e for e in EXCHANGES if e.status >= 400]


def test_every_recorded_shape_is_covered() -> None:
    if not EXCHANGES:
        pytest.skip("anthropic-genai cassettes not available")
    kinds = {b["type"] for e in JSON_OK for b in e.json()["content"]}
    assert kinds == PRODUCED
    assert STREAMS and ERRORS


@pytest.mark.parametrize("exchange", JSON_OK, ids=_id)
def test_json_message_has_the_recorded_shape_and_parses_the_same(
    server: OpenAIServer, client: anthropic.Anthropic, exchange: Exchange
) -> None:
    recorded = exchange.json()
    _script(server, recorded["content"])
    raw = _messages(client, exchange).with_raw_response.create(**exchange.kwargs())
    ours = json.loads(raw.http_response.text)
    assert list(shape_differences(ours, recorded)) == []
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["request-id"]
    mine, theirs = raw.parse(), replay(exchange)
    assert type(mine) is type(theirs)
    assert [b.type for b in mine.content] == [b.type for b in theirs.content]
    for a, b in zip(mine.content, theirs.content, strict=True):
        if a.type == "text":
            assert a.text == b.text
        elif a.type == "tool_use":
            assert (a.id, a.name, a.input) == (b.id, b.name, b.input)
        else:
            assert isinstance(a.thinking, str) and isinstance(a.signature, str)
    assert (mine.stop_reason, mine.stop_sequence) == (theirs.stop_reason, theirs.stop_sequence)
    _same_model(mine.model, theirs.model, exchange)
    assert isinstance(mine.usage.input_tokens, int) and isinstance(mine.usage.output_tokens, int)
    if theirs.usage.output_tokens_details is not None:  # thinking reported
        assert mine.usage.output_tokens_details is not None


def _same_model(mine: str, theirs: str, exchange: Exchange) -> None:
    """We echo the requested model; the API may answer an alias with its dated name."""
    requested = exchange.request["model"]
    assert mine == requested
    assert theirs == requested or theirs.startswith(requested + "-")


def _collapse(kinds: list[str]) -> list[str]:
    """Event types with each run of ``content_block_delta`` as one (token counts differ)."""
    out: list[str] = []
    for kind in kinds:
        if not (kind == "content_block_delta" and out and out[-1] == kind):
            out.append(kind)
    return out


@pytest.mark.parametrize("exchange", STREAMS, ids=_id)
def test_stream_has_the_recorded_events_and_parses_the_same(
    server: OpenAIServer, client: anthropic.Anthropic, exchange: Exchange
) -> None:
    recorded = exchange.events()
    _script(server, _recorded_content(exchange))
    kwargs = {**exchange.kwargs(), "stream": True}
    with _messages(client, exchange).with_streaming_response.create(**kwargs) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    ours, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            ours.append({"event": name, **json.loads(line[len("data: ") :])})
    expected = _collapse([e["event"] for e in recorded])
    got = _collapse([e["event"] for e in ours])
    if "ping" not in expected:  # 7 of 41 recordings (beta) have no ping; the API may omit it
        got = [k for k in got if k != "ping"]
    assert got == expected
    assert all(e["event"] == e["type"] for e in ours)
    by_type = {e["type"]: e for e in recorded}
    for event in ours:
        if event["type"] in by_type:
            assert list(shape_differences(event, by_type[event["type"]])) == [], event["type"]
    # The SDK's stream helper ends at the same message from both.
    _script(server, _recorded_content(exchange))
    plain = {k: v for k, v in exchange.kwargs().items() if k != "stream"}
    with _messages(client, exchange).stream(**plain) as stream:
        mine = stream.get_final_message()
    with (
        replaying(exchange.cassette) as recorded_client,
        _messages(recorded_client, exchange).stream(**plain) as s,
    ):
        theirs = s.get_final_message()
    assert [b.type for b in mine.content] == [b.type for b in theirs.content]
    assert mine.content[0].text == theirs.content[0].text
    assert mine.stop_reason == theirs.stop_reason
    _same_model(mine.model, theirs.model, exchange)
    # The final count (one token per text delta offline) replaced message_start's placeholder.
    assert mine.usage.output_tokens == [e["type"] for e in ours].count("content_block_delta")
    set_fields = {k for k, v in theirs.usage if v is not None} - set(OPTIONAL)
    assert set_fields <= {k for k, v in mine.usage if v is not None}


@pytest.mark.parametrize("exchange", ERRORS, ids=_id)
def test_error_envelope_has_the_recorded_shape_and_raises_the_same(
    server: OpenAIServer, client: anthropic.Anthropic, exchange: Exchange
) -> None:
    recorded = exchange.json()
    assert exchange.status == 404  # every recorded error is an unknown model
    server.queue_fault("not_found")
    with pytest.raises(anthropic.APIStatusError) as info:
        _messages(client, exchange).create(**exchange.kwargs())
    mine, theirs = info.value, replay(exchange)
    assert list(shape_differences(mine.body, recorded)) == []
    assert type(mine) is type(theirs) is anthropic.NotFoundError
    assert mine.status_code == theirs.status_code == 404
    assert mine.type == theirs.type == "not_found_error"
    assert mine.request_id
    assert mine.request_id == mine.body["request_id"]  # type: ignore[index]


def test_shape_differences_catch_what_matters() -> None:
    recorded = {
        "type": "message",
        "usage": {"output_tokens": 5, "service_tier": "standard"},
        "content": [{"text": "a"}],
    }
    assert list(shape_differences({**recorded, "usage": {"output_tokens": 9}}, recorded)) == []
    assert list(shape_differences({**recorded, "usage": {"output_tokens": "9"}}, recorded)) == [
        "$.usage.output_tokens: str, recorded int"
    ]
    assert list(shape_differences({"usage": recorded["usage"], "content": []}, recorded)) == [
        "$.content: 0 items, recorded 1",
        "$.type: only in the recording",
    ]
