"""Stream proxies end their span exactly once on every exit path, keeping partial data."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pydantic
import pytest
from opentelemetry.trace import StatusCode

from rlm_toolkit.genai._reaper import drain
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Say hi"}]


def stream_args(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


def test_completed_stream(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("one two three")
    stream = client.chat.completions.create(**stream_args())
    assert isinstance(stream, openai.Stream)  # the proxy still looks like the SDK's stream
    assert stream.response.status_code == 200  # attributes pass through
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    span = instrumented.span()
    attrs = dict(span.attributes or {})
    usage = chunks[-1].usage
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["rlm.stream.chunk_count"] == len(chunks)
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == chunks[0].id
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert span.status.status_code is StatusCode.UNSET
    if capture:
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "one two three"}],
                "finish_reason": "stop",
            }
        ]
    else:
        assert "gen_ai.output.messages" not in attrs
    metrics = instrumented.metrics()
    (ttfc,) = metrics["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.count == 1
    (per_chunk,) = metrics["gen_ai.client.operation.time_per_output_chunk"]
    assert per_chunk.count == 1  # once per stream: the mean inter-chunk time
    assert per_chunk.explicit_bounds[0] == 0.01


def test_break_inside_with_is_closed(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("a b c d e f g")
    with client.chat.completions.create(**stream_args()) as stream:
        for _ in stream:
            break
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.stream.end_reason"] == "closed"
    assert attrs["rlm.stream.chunk_count"] == 1
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.client.operation.time_per_output_chunk" not in plain_instrumented.metrics()


def test_close_then_exit_ends_once(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    stream = client.chat.completions.create(**stream_args())
    next(stream)
    next(stream)
    stream.close()
    stream.close()
    with stream:
        pass
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "closed"
    assert attrs["rlm.stream.chunk_count"] == 2


def test_abandoned_stream(plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    stream = client.chat.completions.create(**stream_args())
    next(stream)
    assert plain_instrumented.spans() == []
    del stream
    gc.collect()
    drain()  # what the reaper thread does within 0.2 s (tests/genai/test_reaper.py)
    span = plain_instrumented.span()
    assert dict(span.attributes or {})["rlm.stream.end_reason"] == "abandoned"
    assert span.status.status_code is StatusCode.UNSET


def test_cut_stream_is_error(plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    server.queue_fault("cut_stream", after_chunks=2)
    seen = 0
    with pytest.raises(Exception) as info:  # whatever the SDK raises must pass through
        for _ in client.chat.completions.create(**stream_args()):
            seen += 1
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.stream.end_reason"] == "error"
    assert attrs["rlm.stream.chunk_count"] == seen == 2
    assert attrs["error.type"] == type(info.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR


def test_user_exception_inside_with(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    class Boom(Exception):
        pass

    boom = Boom("mine")
    with pytest.raises(Boom) as info, client.chat.completions.create(**stream_args()) as stream:
        for _ in stream:
            raise boom
    assert info.value is boom
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "error"
    assert attrs["error.type"] == "test_user_exception_inside_with.<locals>.Boom"


async def test_async_stream_completed_and_closed(
    instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("x y z")
    stream = await aclient.chat.completions.create(**stream_args())
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    async with await aclient.chat.completions.create(**stream_args()) as second:
        async for _ in second:
            break
    third = await aclient.chat.completions.create(**stream_args())
    await third.__anext__()
    await third.close()
    first, closed, closed_by_close = instrumented.spans()
    assert dict(first.attributes or {})["rlm.stream.end_reason"] == "completed"
    assert dict(first.attributes or {})["rlm.stream.chunk_count"] == len(chunks)
    assert dict(closed.attributes or {})["rlm.stream.end_reason"] == "closed"
    assert dict(closed_by_close.attributes or {})["rlm.stream.end_reason"] == "closed"
    assert dict(closed_by_close.attributes or {})["rlm.stream.chunk_count"] == 1


def test_stream_tool_call_content(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply(tool_calls=[{"name": "lookup", "arguments": '{"q": "x"}'}])
    chunks = list(client.chat.completions.create(**stream_args()))
    call_id = next(
        c.choices[0].delta.tool_calls[0].id for c in chunks if c.choices and c.choices[0].delta.tool_calls
    )
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    if capture:
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": call_id, "name": "lookup", "arguments": '{"q": "x"}'}],
                "finish_reason": "tool_calls",
            }
        ]


def test_stream_helper_one_span(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("helped")
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.openai.api"] == "chat.completions.stream"
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["gen_ai.response.id"] == final.id


def test_stream_helper_early_exit_is_closed(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        for _ in stream:
            break
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "closed"


async def test_async_stream_helper(
    plain_instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer
) -> None:
    async with aclient.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        async for _ in stream:
            pass
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.openai.api"] == "chat.completions.stream"
    assert attrs["rlm.stream.end_reason"] == "completed"


class _Answer(pydantic.BaseModel):
    text: str


def test_stream_helper_parse_error_is_error(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    """The helper raises ``LengthFinishReasonError`` in its own generator while parsing a reply
    cut by ``max_tokens``: the span must end as an error, not ``closed``."""
    server.queue_reply('{"text": "a long answer that will not fit"}')
    with (
        pytest.raises(openai.LengthFinishReasonError),
        client.chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, response_format=_Answer, max_tokens=2
        ) as stream,
    ):
        for _ in stream:
            pass
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.stream.end_reason"] == "error"
    assert attrs["error.type"] == "LengthFinishReasonError"
    assert span.status.status_code is StatusCode.ERROR


def test_stream_helper_user_exception_is_error(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        next(iter(stream))
        raise Boom
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "error"
    assert attrs["error.type"] == Boom.__qualname__


async def test_async_responses_helper_user_exception_is_error(
    plain_instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer
) -> None:
    with pytest.raises(KeyError):
        async with aclient.responses.stream(model="gpt-4o", input="hi") as stream:
            async for _ in stream:
                raise KeyError("mine")
    attrs = dict(plain_instrumented.span().attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["error.type"]) == ("error", "KeyError")


def test_raw_response_stream(plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    server.queue_reply("raw stream")
    raw = client.chat.completions.with_raw_response.create(**stream_args())
    assert plain_instrumented.spans() == []
    stream = raw.parse()
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "raw stream"
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)


def test_legacy_completion_stream(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("streamed legacy")
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True))
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["rlm.stream.chunk_count"] == len(chunks)
    assert attrs["gen_ai.operation.name"] == "text_completion"
