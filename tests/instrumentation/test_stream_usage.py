"""Opt-in stream usage (issue #11), over real HTTP to the offline server.

With the option on, a streamed chat call that did not ask for usage gets it on its span and
metrics, while the app iterates exactly the chunks it would have got without the option.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Count to three"}]
_VARYING = ("id", "created")  # differ between two calls to the server by design


def _shape(chunks: list[Any]) -> list[dict[str, Any]]:
    """What the app sees of each chunk (``to_dict()``: the fields the server set), minus the
    per-response id and timestamp."""
    out = []
    for chunk in chunks:
        data = chunk.to_dict()
        for key in _VARYING:
            data.pop(key, None)
        out.append(data)
    return out


@pytest.fixture
def usage_on(otel: Otel) -> Iterator[Otel]:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        stream_usage=True,
    )
    yield otel
    rlm_toolkit.uninstrument()


def _plain_run(client: openai.OpenAI, server: OpenAIServer, how: str) -> list[Any]:
    server.queue_reply("one two three")
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    if how == "next":
        chunks = []
        while True:
            try:
                chunks.append(next(stream))
            except StopIteration:
                return chunks
    return list(stream)


@pytest.mark.parametrize("how", ["iter", "next"])
def test_app_sees_the_same_chunks(
    otel: Otel, usage_on: Otel, client: openai.OpenAI, server: OpenAIServer, how: str
) -> None:
    with_option = _plain_run(client, server, how)
    rlm_toolkit.uninstrument()
    without = _plain_run(client, server, how)
    assert _shape(with_option) == _shape(without)
    assert with_option[-1].usage is None  # usage on the last chunk the app sees: unchanged
    assert all(c.choices for c in with_option)  # the usage-only chunk was not yielded

    (span,) = otel.spans()  # the second call was not instrumented
    attrs = dict(span.attributes or {})
    request = server.requests[0]
    assert request.body["stream_options"] == {"include_usage": True}  # we asked for it
    assert server.requests[1].body.get("stream_options") is None  # the app did not
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["rlm.stream.chunk_count"] == len(with_option)  # the hidden chunk is not counted
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["gen_ai.usage.cost"] > 0
    points = otel.metrics()["gen_ai.client.token.usage"]
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in points) == [
        ("input", attrs["gen_ai.usage.input_tokens"]),
        ("output", 3),
    ]


def test_async_app_sees_the_same_chunks(otel: Otel, usage_on: Otel, server: OpenAIServer) -> None:
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-secret") as client:
            server.queue_reply("one two three")
            stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            return [c async for c in stream]

    with_option = asyncio.run(run())
    rlm_toolkit.uninstrument()
    without = asyncio.run(run())
    assert _shape(with_option) == _shape(without)
    attrs = dict(otel.span().attributes or {})
    assert attrs["gen_ai.usage.output_tokens"] == 3


def test_stream_helper_final_completion_unchanged(
    otel: Otel, usage_on: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("one two three")
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert final.usage is None  # what the helper gives without the option
    assert "chunk" in events
    attrs = dict(otel.span().attributes or {})
    assert attrs["gen_ai.usage.output_tokens"] == 3


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"include_usage": True}, {"include_usage": True}),
        ({"include_usage": False}, {"include_usage": False}),  # the app said no: respected
    ],
)
def test_app_choice_is_kept(
    otel: Otel, usage_on: Otel, client: openai.OpenAI, server: OpenAIServer, given: Any, sent: Any
) -> None:
    server.queue_reply("one two three")
    chunks = list(
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, stream_options=given)
    )
    assert server.requests[0].body["stream_options"] == sent
    assert (chunks[-1].usage is not None) is sent["include_usage"]  # nothing hidden


def test_not_streamed_and_raw_untouched(
    otel: Otel, usage_on: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("hi")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    server.queue_reply("hi")
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    ) as raw:
        body = raw.read()  # the app reads the raw body: nothing could be hidden there
    assert b'"usage"' not in body
    assert [r.body.get("stream_options") for r in server.requests] == [None, None]


def test_off_by_default(plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    _plain_run(client, server, "iter")
    assert server.requests[0].body.get("stream_options") is None
    assert "gen_ai.usage.input_tokens" not in dict(plain_instrumented.span().attributes or {})


def test_environment_switch(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI, server: OpenAIServer
) -> None:
    monkeypatch.setenv("RLM_STREAM_USAGE", "1")
    rlm_toolkit.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        _plain_run(client, server, "iter")
    finally:
        rlm_toolkit.uninstrument()
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


def test_bad_argument_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="stream_usage='yes': expected True or False"):
        rlm_toolkit.instrument(stream_usage="yes")  # type: ignore[arg-type]
