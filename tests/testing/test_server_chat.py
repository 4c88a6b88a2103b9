"""Chat completions as the real ``openai`` client sees them: plain, streamed, tools, n, limits."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from rlm_toolkit.testing import OpenAIServer

HAIKU_PROMPT = [{"role": "user", "content": "Write a haiku about coding"}]
USAGE_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def test_plain_completion_shape(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT)
    assert isinstance(result, ChatCompletion)
    assert result.object == "chat.completion"
    assert result.model == "gpt-4o"
    assert result.id.startswith("chatcmpl-")
    assert len(result.choices) == 1
    choice = result.choices[0]
    assert (choice.index, choice.finish_reason, choice.message.role) == (0, "stop", "assistant")
    assert (
        choice.message.content
        == "Coding, line by line,\nSoft light on the terminal,\nMorning stillness hums."
    )
    assert choice.message.tool_calls is None
    assert result.usage is not None
    # 3 priming + 3 per message + 5 tokens of text ("Write a haiku about coding").
    assert result.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 11,
        "completion_tokens": 16,
        "total_tokens": 27,
        **USAGE_DETAILS,
    }


def test_demo_reply_echoes_the_prompt_deterministically(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is   OpenTelemetry?"},
    ]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    text = first.choices[0].message.content
    assert text is not None and text.startswith("You said: What is OpenTelemetry? ")
    assert second.choices[0].message.content == text
    assert first.usage == second.usage


def test_queued_replies_are_fifo_then_demo(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply("first")
    server.queue_reply("```repl\nprint(1)\n```")
    got = [
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
        for _ in range(3)
    ]
    assert got[:2] == ["first", "```repl\nprint(1)\n```"]
    assert got[2] is not None and got[2].startswith("You said: x. ")
    assert server.pending == (0, 0)


def _stream_text(client: openai.OpenAI, **kwargs: object) -> tuple[list[ChatCompletionChunk], str]:
    chunks = list(client.chat.completions.create(stream=True, **kwargs))  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


def test_stream_matches_plain_text_and_usage(client: openai.OpenAI) -> None:
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me a story, please!"}]}
    plain = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    chunks, text = _stream_text(client, stream_options={"include_usage": True}, **kwargs)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert text == plain.choices[0].message.content
    # role first, one token per chunk, then finish_reason, then the usage-only chunk.
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    tokens = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert len(tokens) == plain.usage.completion_tokens  # type: ignore[union-attr]
    assert all(t for t in tokens)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-2].choices[0].delta.content is None
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks, text = _stream_text(client, model="gpt-4o", messages=HAIKU_PROMPT)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert text.count("\n") == 2


def test_stream_is_sse_with_done_marker(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply("Hi there")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HAIKU_PROMPT, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0
    body = raw.http_response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in events[:-1]]
    assert deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hi"},
        {"content": " there"},
        {},
    ]


TOOL = {"name": "get_weather", "arguments": '{"city": "Paris"}'}


def test_tool_call_plain(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply(tool_calls=[TOOL, {"name": "get_time", "arguments": "{}", "id": "call_fixed"}])
    result = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = [c.model_dump() for c in choice.message.tool_calls or []]
    assert [(c["type"], c["function"]) for c in calls] == [
        ("function", {"name": "get_weather", "arguments": '{"city": "Paris"}'}),
        ("function", {"name": "get_time", "arguments": "{}"}),
    ]
    assert calls[0]["id"].startswith("call_") and calls[1]["id"] == "call_fixed"


def test_tool_call_stream_fragments(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply(tool_calls=[TOOL])
    server.queue_reply(tool_calls=[TOOL])
    plain = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT, stream=True))
    first = chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", None)
    opening = chunks[1].choices[0].delta.tool_calls
    assert opening is not None and len(opening) == 1
    assert opening[0].model_dump(exclude_none=True) == {
        "index": 0,
        "id": plain.choices[0].message.tool_calls[0].id,  # type: ignore[index]
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    fragments = []
    for chunk in chunks[2:-1]:
        (delta,) = chunk.choices[0].delta.tool_calls or []
        assert delta.id is None and delta.type is None and delta.index == 0
        assert delta.function is not None and delta.function.name is None
        fragments.append(delta.function.arguments)
    assert len(fragments) > 3
    assert "".join(fragments) == '{"city": "Paris"}'  # type: ignore[arg-type]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_helper_accumulates_tool_calls(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply("Checking.", tool_calls=[TOOL])
    with client.chat.completions.stream(model="gpt-4o", messages=HAIKU_PROMPT) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    assert [(c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("get_weather", '{"city": "Paris"}')
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_n_choices_plain_and_stream(server: OpenAIServer, client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT, n=3)
    assert [c.index for c in plain.choices] == [0, 1, 2]
    texts = [c.message.content for c in plain.choices]
    assert len(set(texts)) == 3, "each choice is a different variant"
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT, n=3, stream=True))
    streamed = ["", "", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert streamed == texts
    assert sorted(c.choices[0].index for c in chunks if c.choices[0].finish_reason) == [0, 1, 2]


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates_with_length(client: openai.OpenAI, param: str) -> None:
    result = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT, **{param: 3})  # type: ignore[call-overload]
    assert result.choices[0].message.content == "Coding, line"
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 3
    chunks, text = _stream_text(client, model="gpt-4o", messages=HAIKU_PROMPT, **{param: 3})
    assert text == "Coding, line"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stop_sequences(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply("alpha beta STOP gamma")
    result = client.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT, stop=["STOP", "zeta"])
    assert result.choices[0].message.content == "alpha beta "
    assert result.choices[0].finish_reason == "stop"
    server.queue_reply("one\ntwo")
    _, text = _stream_text(client, model="gpt-4o", messages=HAIKU_PROMPT, stop="\n")
    assert text == "one"


def test_tool_result_turn_gets_an_answer(client: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": TOOL}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    result = client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    assert (result.choices[0].message.content or "").startswith("The tool returned: 18C and sunny.")


async def test_async_client_plain_and_stream(aclient: openai.AsyncOpenAI) -> None:
    plain = await aclient.chat.completions.create(model="gpt-4o", messages=HAIKU_PROMPT)
    stream = await aclient.chat.completions.create(
        model="gpt-4o", messages=HAIKU_PROMPT, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == plain.choices[0].message.content
    assert usage == plain.usage


def test_missing_messages_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=None)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.body == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }
