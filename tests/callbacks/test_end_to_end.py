"""Real HTTP to the offline server, the real openai client, our instrumentation, callbacks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import openai
import pytest

from rlm_toolkit._instrument import active_handler
from rlm_toolkit.callbacks import (
    AsyncBaseCallback,
    BaseCallback,
    CallbackSpanProcessor,
    MetricsCallback,
    StreamingCallback,
)
from rlm_toolkit.callbacks._attach import ensure_router
from rlm_toolkit.callbacks._dispatch import pending_tasks
from rlm_toolkit.callbacks._validate import wants_tokens
from rlm_toolkit.genai import Scope, use_scope
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Recorder, Stack
from .conftest import chat as _chat


class Raising(BaseCallback):
    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        raise RuntimeError("callback bug")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        raise RuntimeError("callback bug")


def test_global_callbacks_see_a_chat_call_with_full_content(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer
) -> None:
    rec = Recorder()
    stack.instrument(callbacks=[Raising(), rec])
    server.queue_reply("Hi there, friend")
    result = _chat(client, "Привет!")
    assert result.choices[0].message.content == "Hi there, friend"  # the app is unaffected
    assert rec.names == ["on_llm_start", "on_llm_end"]
    start, end = rec.events[0][1], rec.events[1][1]
    assert (start["prompt"], start["model"], start["operation"]) == ("Привет!", "gpt-4o", "chat")
    response = end["response"]
    assert response.content == "Hi there, friend"
    assert response.raw is result
    assert response.finish_reason == "stop"
    assert response.usage.total_tokens == result.usage.total_tokens > 0
    assert response.usage.prompt_tokens == result.usage.prompt_tokens
    assert response.cost is not None and response.cost > 0
    (span,) = stack.spans.get_finished_spans()
    assert end["run_id"] == f"{span.context.span_id:016x}"
    # capture is off: the exported span has no content, and never the key
    exported = str(dict(span.attributes or {}))
    assert "Привет" not in exported and "friend" not in exported and API_KEY not in exported


def test_retries_reach_on_retry_then_on_llm_end(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer
) -> None:
    rec = Recorder()
    metrics = MetricsCallback()
    stack.instrument(callbacks=[rec, metrics])
    server.queue_fault("rate_limit", times=2, retry_after=0.01)
    _chat(client)
    assert rec.names == ["on_llm_start", "on_retry", "on_retry", "on_llm_end"]
    retries = [kw for name, kw in rec.events if name == "on_retry"]
    assert [(kw["attempt"], kw["max_attempts"], kw["status_code"]) for kw in retries] == [
        (1, 2, 429),
        (2, 2, 429),
    ]
    assert all(isinstance(kw["error"], openai.RateLimitError) for kw in retries)
    assert all(kw["model"] == "gpt-4o" and kw["run_id"] == rec.events[0][1]["run_id"] for kw in retries)
    assert rec.events[-1][1]["attempts"] == 3
    got = metrics.get_metrics()
    assert (got["total_calls"], got["retries"], got["errors"]) == (1, 2, 0)


def test_failed_call_goes_to_on_error_and_the_user_gets_the_sdk_exception(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer
) -> None:
    rec = Recorder()
    stack.instrument(callbacks=[rec])
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError) as info:
        _chat(client)
    assert rec.names == ["on_llm_start", "on_error"]
    assert rec.events[1][1]["error"] is info.value
    assert rec.events[1][1]["error_type"] == "BadRequestError"


@pytest.mark.parametrize("export", [False, True], ids=["in_process", "exported"])
def test_stream_tokens_reach_streaming_callback(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, export: bool
) -> None:
    """Tokens reach ``on_token`` either way; they become exported ``rlm.llm.token`` records
    (without their text) only when ``RLM_EXPORT_TOKEN_EVENTS`` asks for it."""
    if export:
        monkeypatch.setenv("RLM_EXPORT_TOKEN_EVENTS", "1")
    tokens: list[str] = []
    rec = Recorder()
    stack.instrument(callbacks=[StreamingCallback(on_token=tokens.append), rec])
    server.queue_reply("one two three four")
    stream = _chat(client, stream=True)
    chunks = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(tokens) == "".join(chunks) == "one two three four"
    assert len(tokens) > 1
    assert rec.names[0] == "on_llm_start" and rec.names[-1] == "on_llm_end"
    assert rec.names[1:-1] == ["on_token"] * len(tokens)
    indexes = [kw["index"] for n, kw in rec.events if n == "on_token"]
    assert indexes == sorted(set(indexes))  # rlm.token.index: position in the stream, increasing
    assert rec.events[-1][1]["response"].content == "one two three four"
    token_records = [r for r in stack.logs.get_finished_logs() if r.log_record.event_name == "rlm.llm.token"]
    assert len(token_records) == (len(tokens) if export else 0)
    assert [dict(r.log_record.attributes or {}) for r in token_records] == [
        {"rlm.token.index": i} for i in (indexes if export else [])
    ]
    assert all(r.log_record.body is None for r in token_records)


def test_two_scopes_see_only_their_own_calls(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer
) -> None:
    stack.instrument()
    handler = active_handler()
    assert handler is not None
    processor, _ = ensure_router(handler)
    a_tokens: list[str] = []
    a, b = StreamingCallback(on_token=a_tokens.append), Recorder()
    a_rec = Recorder()
    scope_a = Scope(handler=handler, callbacks=(a, a_rec), wants_tokens=wants_tokens((a,)))
    scope_b = Scope(handler=handler, callbacks=(b,), wants_tokens=False)
    server.queue_reply("for a")
    server.queue_reply("for b")
    with use_scope(scope_a):
        "".join(c.choices[0].delta.content or "" for c in _chat(client, "A?", stream=True) if c.choices)
    with use_scope(scope_b):
        _chat(client, "B?")
    _chat(client, "nobody's")
    assert "".join(a_tokens) == "for a"
    assert [kw["prompt"] for n, kw in a_rec.events if n == "on_llm_start"] == ["A?"]
    assert [(n, kw.get("prompt")) for n, kw in b.events] == [("on_llm_start", "B?"), ("on_llm_end", None)]
    assert b.events[1][1]["response"].content == "for b"
    assert len(stack.spans.get_finished_spans()) == 3
    # the per-span dict of the routing processor is empty again
    assert isinstance(processor, CallbackSpanProcessor) and processor._spans == {}


class AsyncRec(AsyncBaseCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None]] = []
        self.threads: set[str] = set()
        self.done = threading.Event()

    async def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        self.threads.add(threading.current_thread().name)
        self.events.append(("start", prompt))

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(("end", response.content))
        self.done.set()


async def test_async_callback_on_async_client(stack: Stack, server: OpenAIServer) -> None:
    cb = AsyncRec()
    stack.instrument(callbacks=[cb])
    server.queue_reply("async hi")
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY) as aclient:
        await aclient.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "ping"}])
        await asyncio.gather(*pending_tasks())
    assert cb.events == [("start", "ping"), ("end", "async hi")]
    assert cb.threads == {threading.current_thread().name}  # ran on the app's own loop


def test_async_callback_on_sync_client(stack: Stack, client: openai.OpenAI, server: OpenAIServer) -> None:
    cb = AsyncRec()
    stack.instrument(callbacks=[cb])
    server.queue_reply("sync hi")
    _chat(client, "ping")
    assert cb.done.wait(5)
    assert sorted(cb.events) == [("end", "sync hi"), ("start", "ping")]
    assert cb.threads == {"rlm-toolkit-callbacks"}


def test_tutorial_part_1_through_rlm(server: OpenAIServer, capsys: pytest.CaptureFixture[str]) -> None:
    from rlm_toolkit import RLM

    class SimpleLogger(BaseCallback):
        def on_llm_start(self, prompt, **kwargs):  # type: ignore[no-untyped-def]
            print(f"📤 Sending prompt ({len(prompt)} chars)")

        def on_llm_end(self, response, **kwargs):  # type: ignore[no-untyped-def]
            print(f"📥 Received ({response.usage.total_tokens} tokens)")

        def on_error(self, error, **kwargs):  # type: ignore[no-untyped-def]
            print(f"❌ Error: {error}")

    server.reset()
    rlm = RLM.from_openai("gpt-4o", callbacks=[SimpleLogger()], base_url=server.base_url, api_key=API_KEY)
    result = rlm.run("Hello!")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "📤 Sending prompt (6 chars)"
    assert out[1] == f"📥 Received ({result.usage.total_tokens} tokens)"
    assert result.usage.total_tokens > 0
    assert len(out) == 2
