"""The offline server speaks Anthropic's Messages API: the real ``anthropic`` SDK over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest

from rlm_toolkit.testing import OpenAIServer

USER = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test-secret", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(server: OpenAIServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.url, api_key="sk-ant-test-secret", max_retries=0
    ) as c:
        yield c


def raw_events(client: anthropic.Anthropic, **params: object) -> list[dict[str, object]]:
    """The SSE events as sent (``ping`` included), each as ``{"event": ..., **data}``."""
    with client.messages.with_streaming_response.create(stream=True, **params) as response:  # type: ignore[call-overload]
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            assert data["type"] == name, "the event line and the data's type must agree"
            events.append({"event": name, **data})
    return events


def test_create_answers_a_message_with_usage_and_request_id(
    server: OpenAIServer, client: anthropic.Anthropic
) -> None:
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=100, messages=USER)
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message._request_id == raw.headers["request-id"]
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-5"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert (
        message.content[0].text
        == "You said: Say hello in one word. " + message.content[0].text.split(". ", 1)[1]
    )
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    usage = message.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == 0
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers.get("x-api-key", request.headers.get("authorization")) == "<redacted>"
    assert "sk-ant-test-secret" not in json.dumps(request.headers)


def test_same_prompt_same_words_and_usage_on_both_apis(
    server: OpenAIServer, client: anthropic.Anthropic
) -> None:
    """The demo model is one model: the Messages API answers what chat completions answers."""
    conversation = [
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "user", "content": "Tell me about Paris."},
    ]
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as oai:
        chat = oai.chat.completions.create(
            model="m",
            messages=[{"role": "system", "content": "Be brief."}, *conversation],  # type: ignore[list-item]
        )
    message = client.messages.create(model="m", max_tokens=1000, system="Be brief.", messages=conversation)  # type: ignore[arg-type]
    assert message.content[0].text == chat.choices[0].message.content  # type: ignore[union-attr]
    assert chat.usage is not None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        chat.usage.prompt_tokens,
        chat.usage.completion_tokens,
    )


def test_tool_result_blocks_are_read_as_tool_messages(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="m",
        max_tokens=200,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}],
            },
        ],
    )
    assert message.content[0].text.startswith("The tool returned: 18C and sunny.")  # type: ignore[union-attr]


def test_stream_event_sequence_matches_the_api(client: anthropic.Anthropic) -> None:
    events = raw_events(client, model="m", max_tokens=100, messages=USER)
    kinds = [e["event"] for e in events]
    deltas = kinds.count("content_block_delta")
    assert deltas > 1
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, final = events[0], events[-2]
    assert start["message"]["usage"]["output_tokens"] == 1  # type: ignore[index]
    assert start["message"]["stop_reason"] is None and start["message"]["content"] == []  # type: ignore[index]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None, "stop_details": None}
    assert final["usage"]["output_tokens"] == deltas  # type: ignore[index]
    assert final["usage"]["input_tokens"] == start["message"]["usage"]["input_tokens"]  # type: ignore[index]


def test_create_stream_true_and_the_stream_helper_agree_with_create(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="m", max_tokens=100, messages=USER)
    text = ""
    kinds = []
    with client.messages.create(model="m", max_tokens=100, messages=USER, stream=True) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "ping" not in kinds
    assert text == plain.content[0].text  # type: ignore[union-attr]
    with client.messages.stream(model="m", max_tokens=100, messages=USER) as helper:
        streamed = "".join(helper.text_stream)
        final = helper.get_final_message()
    assert streamed == text
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.stop_reason == "end_turn"


async def test_async_create_stream_and_helper(aclient: anthropic.AsyncAnthropic) -> None:
    plain = await aclient.messages.create(model="m", max_tokens=100, messages=USER)
    text = ""
    stream = await aclient.messages.create(model="m", max_tokens=100, messages=USER, stream=True)
    async for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
    assert text == plain.content[0].text  # type: ignore[union-attr]
    async with aclient.messages.stream(model="m", max_tokens=100, messages=USER) as helper:
        streamed = "".join([t async for t in helper.text_stream])
        final = await helper.get_final_message()
    assert streamed == text
    assert final.usage.output_tokens == plain.usage.output_tokens
    counted = await aclient.messages.count_tokens(model="m", messages=USER)
    assert counted.input_tokens == plain.usage.input_tokens


def test_thinking_block_first_with_thinking_and_signature_deltas(client: anthropic.Anthropic) -> None:
    params = {
        "model": "m",
        "max_tokens": 2000,
        "messages": USER,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    plain = client.messages.create(**params)  # type: ignore[arg-type]
    assert [b.type for b in plain.content] == ["thinking", "text"]
    thinking = plain.content[0]
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    events = raw_events(client, **params)
    delta_kinds = [e["delta"]["type"] for e in events if e["event"] == "content_block_delta"]  # type: ignore[index]
    n_thinking = delta_kinds.count("thinking_delta")
    assert delta_kinds[: n_thinking + 1] == ["thinking_delta"] * n_thinking + ["signature_delta"]
    assert set(delta_kinds[n_thinking + 1 :]) == {"text_delta"}
    with client.messages.stream(**params) as helper:  # type: ignore[arg-type]
        final = helper.get_final_message()
    assert final.content[0].thinking == thinking.thinking  # type: ignore[union-attr]
    assert final.content[0].signature == thinking.signature  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**{**params, "thinking": {"type": "enabled", "budget_tokens": 10}})  # type: ignore[arg-type]
    assert info.value.type == "invalid_request_error"


def test_scripted_tool_call_is_a_tool_use_block_streamed_as_input_json(
    server: OpenAIServer, client: anthropic.Anthropic
) -> None:
    arguments = '{"city": "Paris", "days": [1, 2]}'
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
    server.queue_reply(tool_calls=[{"name": "get_weather", "arguments": arguments, "id": "toolu_fixed"}])
    plain = client.messages.create(model="m", max_tokens=100, messages=USER, tools=tools)  # type: ignore[arg-type]
    assert plain.stop_reason == "tool_use"
    [block] = plain.content
    assert (block.type, block.id, block.name, block.input) == (  # type: ignore[union-attr]
        "tool_use",
        "toolu_fixed",
        "get_weather",
        {"city": "Paris", "days": [1, 2]},
    )
    server.queue_reply(tool_calls=[{"name": "get_weather", "arguments": arguments}])
    events = raw_events(client, model="m", max_tokens=100, messages=USER, tools=tools)
    fragments = [e["delta"]["partial_json"] for e in events if e["event"] == "content_block_delta"]  # type: ignore[index]
    assert len(fragments) > 1 and "".join(fragments) == arguments  # type: ignore[arg-type]
    assert events[1]["content_block"]["input"] == {}  # type: ignore[index]
    server.queue_reply("Let me check.", tool_calls=[{"name": "get_weather", "arguments": arguments}])
    with client.messages.stream(model="m", max_tokens=100, messages=USER, tools=tools) as helper:  # type: ignore[arg-type]
        final = helper.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Paris", "days": [1, 2]}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


def test_stop_sequence_and_max_tokens_stop_reasons(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    server.queue_reply("one two STOP three")
    stopped = client.messages.create(model="m", max_tokens=100, messages=USER, stop_sequences=["STOP", "two"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "two")
    assert stopped.content[0].text == "one "  # type: ignore[union-attr]
    server.queue_reply("one two three four")
    with client.messages.stream(model="m", max_tokens=2, messages=USER) as helper:
        final = helper.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("max_tokens", None)
    assert final.content[0].text == "one two" and final.usage.output_tokens == 2  # type: ignore[union-attr]


def test_count_tokens_equals_create_input_tokens(client: anthropic.Anthropic) -> None:
    tools = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
    params = {
        "model": "m",
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": USER,
        "tools": tools,
    }
    counted = client.messages.count_tokens(**params)  # type: ignore[arg-type]
    created = client.messages.create(max_tokens=50, **params)  # type: ignore[arg-type]
    assert counted.input_tokens == created.usage.input_tokens
    assert counted.input_tokens > client.messages.count_tokens(model="m", messages=USER).input_tokens  # type: ignore[arg-type]


def test_beta_messages_reach_the_same_endpoint(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    message = client.beta.messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
    assert message.content[0].text  # type: ignore[union-attr]
    assert server.requests[-1].path == "/v1/messages"


@pytest.mark.parametrize(
    ("kind", "status", "exception", "error_type"),
    [
        ("bad_request", 400, anthropic.BadRequestError, "invalid_request_error"),
        ("unauthorized", 401, anthropic.AuthenticationError, "authentication_error"),
        ("not_found", 404, anthropic.NotFoundError, "not_found_error"),
        ("rate_limit", 429, anthropic.RateLimitError, "rate_limit_error"),
        ("server_error", 500, anthropic.InternalServerError, "api_error"),
        ("unavailable", 529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_error_faults_answer_the_envelope_as_typed_exceptions(
    server: OpenAIServer,
    client: anthropic.Anthropic,
    kind: str,
    status: int,
    exception: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    server.queue_fault(kind)
    with pytest.raises(exception) as info:
        client.messages.create(model="m", max_tokens=10, messages=USER)
    error = info.value
    assert error.status_code == status and error.type == error_type
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.body == {"type": "error", "error": {"type": error_type, "message": error.api_message}, "request_id": error.request_id}  # fmt: skip
    assert server.pending == (0, 0)


def test_bad_requests_answer_the_envelope(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", messages=USER, max_tokens=0)
    assert info.value.type == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body={"model": "m", "messages": USER}, cast_to=object)
    assert info.value.api_message == "max_tokens: Field required"
    with pytest.raises(anthropic.NotFoundError) as info:
        client.post("/v1/messages/nothing", body={}, cast_to=object)
    assert info.value.type == "not_found_error"


@pytest.mark.parametrize(("kind", "status"), [("rate_limit", 429), ("unavailable", 529)])
def test_retries_honour_retry_after(server: OpenAIServer, kind: str, status: int) -> None:
    server.queue_fault(kind, times=2, retry_after=0.05)
    with anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=2) as client:
        raw = client.messages.with_raw_response.create(model="m", max_tokens=10, messages=USER)
    assert raw.retries_taken == 2
    assert raw.parse().content[0].text  # type: ignore[union-attr]
    assert [r.fault for r in server.requests] == [kind, kind, None]
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]


def test_retry_after_header_is_what_the_api_sends(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    server.queue_fault("rate_limit", retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="m", max_tokens=10, messages=USER)
    headers = info.value.response.headers
    assert headers["retry-after"] == "7" and "retry-after-ms" not in headers
    assert headers["request-id"] == info.value.request_id


async def test_async_retry_then_error(server: OpenAIServer) -> None:
    server.queue_fault("unavailable", times=3, retry_after=0.01)
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key="x", max_retries=2) as client:
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.create(model="m", max_tokens=10, messages=USER)
    assert len(server.requests) == 3


def test_stream_error_event_raises_mid_stream(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    server.queue_fault("stream_error", after_chunks=3)
    seen = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for event in client.messages.create(model="m", max_tokens=100, messages=USER, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start"]  # the third event sent was the ping
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert client.messages.create(
        model="m", max_tokens=10, messages=USER
    ).content  # the connection is reusable


def test_stream_error_on_chat_completions(server: OpenAIServer) -> None:
    server.queue_fault("stream_error")
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as oai:
        seen = 0
        with pytest.raises(openai.APIError, match="server had an error"):
            for _chunk in oai.chat.completions.create(model="m", messages=USER, stream=True):  # type: ignore[arg-type]
                seen += 1
    assert seen == 1


def test_cut_and_malformed_streams_fail_in_the_sdk(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    server.queue_fault("cut_stream", after_chunks=2)
    seen = []
    with (
        pytest.raises(anthropic.APIConnectionError),
        client.messages.stream(model="m", max_tokens=100, messages=USER) as helper,
    ):
        seen.extend(event.type for event in helper)
    assert seen == ["message_start", "content_block_start"]
    server.queue_fault("malformed_sse", after_chunks=2)
    with pytest.raises(json.JSONDecodeError):
        for _event in client.messages.create(model="m", max_tokens=100, messages=USER, stream=True):
            pass


def test_stream_only_faults_wait_for_a_streaming_request(
    server: OpenAIServer, client: anthropic.Anthropic
) -> None:
    server.queue_fault("cut_stream")
    assert client.messages.create(model="m", max_tokens=10, messages=USER).content
    assert server.pending == (0, 1)


def test_reset_is_a_connection_error(server: OpenAIServer, client: anthropic.Anthropic) -> None:
    server.queue_fault("reset", path="/messages")
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model="m", max_tokens=10, messages=USER)


def test_the_offline_model_plays_a_recursive_run_through_the_messages_api(
    server: OpenAIServer, client: anthropic.Anthropic
) -> None:
    """A recursive run's turns (system prompt, code replies, REPL output as the next user turn)
    get the same replies on the Messages API as on chat completions, so a run can use either."""
    system = "You are a recursive language model (RLM). The context lives in a REPL."
    conversation: list[dict[str, str]] = [
        {"role": "user", "content": "Question: Which city hosts the blue door?"}
    ]
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as oai:
        for turn in range(3):
            chat = oai.chat.completions.create(
                model="m",
                messages=[{"role": "system", "content": system}, *conversation],  # type: ignore[list-item]
            )
            message = client.messages.create(model="m", max_tokens=4000, system=system, messages=conversation)  # type: ignore[arg-type]
            reply = message.content[0].text  # type: ignore[union-attr]
            assert reply == chat.choices[0].message.content
            assert "```repl" in reply
            conversation += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"REPL output of turn {turn + 1}: ok"},
            ]
    assert "FINAL_VAR" in reply


def test_slow_fault_times_out_in_the_sdk(server: OpenAIServer) -> None:
    server.queue_fault("slow", delay=2.0, path="/messages")
    with (
        anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0, timeout=0.2) as client,
        pytest.raises(anthropic.APITimeoutError),
    ):
        client.messages.create(model="m", max_tokens=10, messages=USER)
    assert [r.fault for r in server.requests] == ["slow"]
