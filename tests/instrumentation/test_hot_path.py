"""What the hot-path work changed, pinned: 0-based token indexes, the light stream iterator,
partial Responses text, the per-base-URL server cache, the lazily installed request-body hook,
request parameter precedence, cost attributes and the observable cost counter."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from typing import Any

import openai
import pytest
import wrapt
from openai.resources.chat.completions import Completions
from opentelemetry.trace import StatusCode

import rlm_toolkit
from rlm_toolkit.genai import ChunkHandler, StreamState, SyncStreamProxy
from rlm_toolkit.genai._reaper import drain
from rlm_toolkit.instrumentation.openai._request import CHAT_PARAMS, request_attributes
from rlm_toolkit.instrumentation.openai._targets import BODY_HOOK, is_ours, resolve
from rlm_toolkit.instrumentation.openai._wrappers import _Kinds
from rlm_toolkit.pricing import estimate_cost
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, instrument_with

MESSAGES = [{"role": "user", "content": "Say hi"}]


class _ListStream:
    """A stream-like object whose class the provider layer does not know."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __iter__(self) -> Any:
        return iter(self.items)

    def close(self) -> None:
        pass


class _FakeInvocation:
    """Only what ``StreamState.end`` calls on an invocation."""

    wants_tokens = False
    start_ns = 0

    def __init__(self) -> None:
        self.stopped: list[dict[str, Any]] = []

    def record_stream_timing(self, first: float | None, per_chunk: float | None) -> None:
        pass

    def stop(self, response: Any, extra: dict[str, Any], *_: Any) -> None:
        self.stopped.append(extra)


class _Counting(ChunkHandler):
    def on_chunk(self, chunk: Any) -> None:
        self.count += 1

    def finish(self, inv: Any) -> None:
        return None


def stream_args(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": MESSAGES, "stream": True, **extra}


def test_token_index_counts_text_tokens_from_zero(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("alpha beta gamma")
    consumer = plain_instrumented.want_tokens()
    chunks = list(client.chat.completions.create(**stream_args(stream_options={"include_usage": True})))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(chunks) > len(texts) >= 2  # role-only, finish and usage chunks carry no text
    assert consumer.events == [
        ("rlm.llm.token", {"rlm.token.index": i}, text) for i, text in enumerate(texts)
    ]


def test_responses_tokens_count_from_zero(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("one two")
    consumer = plain_instrumented.want_tokens()
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [attrs["rlm.token.index"] for _, attrs, _ in consumer.events] == list(range(len(deltas)))
    assert events[0].type != "response.output_text.delta"  # so a chunk index would not start at 0


def test_next_and_for_share_one_lifecycle(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("a b c")
    stream = client.chat.completions.create(**stream_args())
    first = next(stream)
    rest = list(stream)
    assert iter(stream) is not stream  # a light iterator, like the SDK's own generator
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "completed"
    assert attrs["rlm.stream.chunk_count"] == 1 + len(rest)
    assert first.id == attrs["gen_ai.response.id"]


def test_iterator_keeps_the_stream_alive(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("a b c")
    iterator = iter(client.chat.completions.create(**stream_args()))  # the proxy itself is dropped
    gc.collect()
    assert plain_instrumented.spans() == []  # not "abandoned" while its iterator is in use
    chunks = list(iterator)
    attrs = dict(plain_instrumented.span().attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["rlm.stream.chunk_count"]) == ("completed", len(chunks))


def test_break_without_with_is_abandoned_once(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    """Dropping the iterator after ``break`` closes our generator (GeneratorExit): that must
    not end the span as an error; the proxy's finalizer ends it as abandoned, once."""
    server.queue_reply("a b c d e")
    for _ in client.chat.completions.create(**stream_args()):
        break
    gc.collect()
    drain()
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["rlm.stream.chunk_count"]) == ("abandoned", 1)
    assert span.status.status_code is StatusCode.UNSET


async def test_async_break_without_with_is_abandoned_once(
    plain_instrumented: Otel, aclient: openai.AsyncOpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("a b c d e")
    async for _ in await aclient.chat.completions.create(**stream_args()):
        break
    await asyncio.sleep(0)  # the loop's async-generator finaliser closes the iterator
    gc.collect()
    await asyncio.sleep(0)
    drain()
    attrs = dict(plain_instrumented.span().attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["rlm.stream.chunk_count"]) == ("abandoned", 1)


def test_proxy_iterates_the_sdk_inner_iterator(client: openai.OpenAI, server: OpenAIServer) -> None:
    """The proxy replaces ``Stream.__iter__``'s generator layer, only for streams whose class
    iterates exactly like ``openai.Stream``; a subclass that iterates differently, or a wrapped
    ``__iter__``, is iterated through ``iter()``."""
    server.queue_reply("a b")
    stream = client.chat.completions.create(**stream_args())  # not instrumented: the SDK's own
    source = _Kinds().chunk_source(stream)
    assert source is not None and source(stream) is stream._iterator

    class Reversed(openai.Stream):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            return reversed(list(self._iterator))

    class Wrapped(openai.Stream):  # type: ignore[type-arg]
        __iter__ = wrapt.FunctionWrapper(openai.Stream.__iter__, lambda w, i, a, k: w(*a, **k))

    for cls in (Reversed, Wrapped):
        stream.__class__ = cls
        assert _Kinds().chunk_source(stream) is None, cls
    stream.close()


@pytest.mark.parametrize("loop", ["for", "next"])
def test_iterator_replaced_after_the_call_is_iterated(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, loop: str
) -> None:
    """Another instrumentation wrapped around ours may swap the SDK stream's ``_iterator`` for
    its own (Sentry's OpenAI integration does): both ``for`` and ``next()`` must go through it,
    as they would on the SDK's own stream."""
    seen: list[Any] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        stream = wrapped(*args, **kwargs)
        inner = stream._iterator

        def observed() -> Any:
            for chunk in inner:
                seen.append(chunk)
                yield chunk

        stream._iterator = observed()
        return stream

    server.queue_reply("one two three")
    create = vars(Completions)["create"]
    wrapt.wrap_function_wrapper(Completions, "create", theirs)
    try:
        stream = client.chat.completions.create(**stream_args())
        if loop == "for":
            chunks = list(stream)
        else:
            chunks = []
            with contextlib.suppress(StopIteration):
                while True:
                    chunks.append(next(stream))
    finally:
        Completions.create = create  # type: ignore[method-assign]
    assert chunks and seen == chunks
    attrs = dict(plain_instrumented.span().attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["rlm.stream.chunk_count"]) == ("completed", len(chunks))


def test_proxy_without_inner_iterator_iterates_the_stream() -> None:
    inv = _FakeInvocation()
    handler = _Counting(inv)  # type: ignore[arg-type]
    proxy = SyncStreamProxy(_ListStream([1, 2, 3]), StreamState(inv, handler))  # type: ignore[arg-type]
    assert list(proxy) == [1, 2, 3]
    assert [e["rlm.stream.end_reason"] for e in inv.stopped] == ["completed"]
    assert inv.stopped[0]["rlm.stream.chunk_count"] == 3


def test_responses_stream_closed_early_keeps_partial_text(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capture: bool
) -> None:
    server.queue_reply("one two three four five")
    stream = client.responses.create(model="gpt-4o", input="count", stream=True)
    seen = []
    for event in stream:
        if event.type == "response.output_text.delta":
            seen.append(event.delta)
            if len(seen) == 2:
                break
    stream.close()
    attrs = dict(instrumented.span().attributes or {})
    assert attrs["rlm.stream.end_reason"] == "closed"
    assert attrs["gen_ai.response.id"].startswith("resp")  # from response.created
    if capture:
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "".join(seen)}],
                "finish_reason": "error",
            }
        ]
    else:
        assert "gen_ai.output.messages" not in attrs


def test_server_address_follows_a_changed_base_url(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.base_url = server.base_url.replace("127.0.0.1", "localhost")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    servers = [
        (s.attributes["server.address"], s.attributes["server.port"]) for s in plain_instrumented.spans()
    ]
    port = int(server.base_url.split(":")[2].split("/")[0])
    assert servers == [("127.0.0.1", port), ("localhost", port)]


def _body_hook_installed() -> bool:
    found = resolve(BODY_HOOK)
    assert found is not None
    _, cls, method = found
    return is_ours(vars(cls)[method])


def test_body_hook_installed_on_first_need(otel: Otel, client: openai.OpenAI, server: OpenAIServer) -> None:
    instrument_with(otel, capture_content=True)
    try:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert not _body_hook_installed()  # a list is read from kwargs: no hook needed
        server.queue_reply("ok")
        client.chat.completions.create(model="gpt-4o", messages=(m for m in MESSAGES))
        assert _body_hook_installed()
        spans = otel.spans()
        assert json.loads(spans[1].attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}
        ]
        assert [r.body["messages"] for r in server.requests] == [MESSAGES, MESSAGES]  # intact
    finally:
        rlm_toolkit.uninstrument()
    assert not _body_hook_installed()


@pytest.mark.parametrize("order", ["old_first", "new_first"])
def test_max_completion_tokens_wins_over_max_tokens(order: str) -> None:
    pairs = [("max_tokens", 10), ("max_completion_tokens", 20)]
    kwargs = dict(pairs if order == "old_first" else pairs[::-1])
    attrs = request_attributes({"model": "m", "stream": False, **kwargs}, CHAT_PARAMS, {})
    assert attrs == {"gen_ai.request.max_tokens": 20}  # stream=False is not an attribute


def test_cost_attribute_and_counter(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    responses = [client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(2)]
    costs = []
    for response, span in zip(responses, plain_instrumented.spans(), strict=True):
        expected = estimate_cost(
            response.model,
            input_tokens=response.usage.prompt_tokens,
            output_tokens=response.usage.completion_tokens,
        )
        assert expected is not None and expected > 0
        assert span.attributes["gen_ai.usage.cost"] == pytest.approx(expected, rel=1e-12)
        costs.append(expected)
    (point,) = plain_instrumented.metrics()["rlm.client.cost"]
    assert point.value == pytest.approx(sum(costs), rel=1e-12)
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": responses[0].model,
        "server.address": "127.0.0.1",
        "server.port": plain_instrumented.spans()[0].attributes["server.port"],
    }


def test_unpriced_model_records_no_cost(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    client.chat.completions.create(model="no-such-model-xyz", messages=MESSAGES)
    assert "gen_ai.usage.cost" not in dict(plain_instrumented.span().attributes or {})
    assert "rlm.client.cost" not in plain_instrumented.metrics()


def test_embeddings_input_is_in_process_only(
    instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    from .test_lifecycle import PayloadSpans

    spy = PayloadSpans()
    instrumented.tracer_provider.add_span_processor(spy)
    client.embeddings.create(model="text-embedding-3-small", input=["secret a", "secret b"])
    ((request, inputs),) = spy.starts
    assert request["input"] == ["secret a", "secret b"] and inputs is None
    attrs = dict(instrumented.span().attributes or {})
    assert "secret" not in repr(attrs)  # no content attribute for embeddings, capture on or off
    assert not [k for k in attrs if "messages" in k]
