"""Calling convention, isolation of raising callbacks, and async callbacks that never block."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from rlm_toolkit.callbacks import AsyncBaseCallback, BaseCallback, StreamingCallback
from rlm_toolkit.callbacks._span_processor import call
from rlm_toolkit.genai import use_scope

from .conftest import Otel, Recorder, chat_call


def test_base_methods_are_noops_and_need_no_init() -> None:
    class Bare(BaseCallback):
        def __init__(self) -> None:  # never calls super().__init__()
            pass

    cb = Bare()
    assert cb.on_llm_start(prompt="x") is None
    assert cb.on_retry(attempt=1, max_attempts=2, error=None) is None
    assert cb.on_tool_end(tool_name="repl", tool_output="") is None


def test_only_accepted_keywords_are_passed() -> None:
    got: list[Any] = []

    class Narrow(BaseCallback):
        def on_token(self, token):  # type: ignore[no-untyped-def,override]  # tutorial shape
            got.append(("token", token))

        def on_llm_end(self, response, model=None):  # type: ignore[no-untyped-def,override]
            got.append(("end", response, model))

    cb = Narrow()
    call(cb, "on_token", {"token": "Hi", "index": 0, "run_id": "ab"})
    call(cb, "on_llm_end", {"response": "R", "model": "m", "span": None})
    assert got == [("token", "Hi"), ("end", "R", "m")]


def test_unbindable_method_is_skipped_and_logged_once(caplog_callbacks: pytest.LogCaptureFixture) -> None:
    class Wrong(BaseCallback):
        def on_token(self, text):  # type: ignore[no-untyped-def,override]
            raise AssertionError("must not be called")

        def on_error(self, error, /):  # type: ignore[no-untyped-def,override]
            raise AssertionError("must not be called")

    cb = Wrong()
    for _ in range(3):
        call(cb, "on_token", {"token": "x"})
        call(cb, "on_error", {"error": ValueError()})
    messages = [r.getMessage() for r in caplog_callbacks.records]
    assert messages == [
        "callback test_unbindable_method_is_skipped_and_logged_once.<locals>.Wrong.on_token needs ['text'] which this "
        "event does not provide; skipped (logged once; the app and other callbacks carry on)",
        "callback test_unbindable_method_is_skipped_and_logged_once.<locals>.Wrong.on_error cannot be called with "
        "keyword arguments (positional-only parameter 'error'); skipped (logged once; the app and other callbacks carry on)",
    ]


def test_raising_callback_is_isolated_and_logged_once(
    otel: Otel, caplog_callbacks: pytest.LogCaptureFixture
) -> None:
    class Raising(BaseCallback):
        def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
            raise RuntimeError("callback bug")

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            raise KeyError("other bug")

    good = Recorder()
    with use_scope(otel.scope(Raising(), good)):
        for _ in range(3):
            chat_call(otel.tracer)
    assert good.names == ["on_llm_start", "on_llm_end"] * 3
    assert len(otel.spans.get_finished_spans()) == 3
    records = caplog_callbacks.records
    assert [(r.levelno, r.getMessage().split(" (")[0]) for r in records] == [
        (
            logging.WARNING,
            "callback test_raising_callback_is_isolated_and_logged_once.<locals>.Raising.on_llm_start raised",
        ),
        (
            logging.WARNING,
            "callback test_raising_callback_is_isolated_and_logged_once.<locals>.Raising.on_llm_end raised",
        ),
    ]
    assert records[0].exc_info is not None and str(records[0].exc_info[1]) == "callback bug"


def test_base_exception_is_not_swallowed() -> None:
    class Quit(BaseCallback):
        def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call(Quit(), "on_llm_start", {"prompt": "x"})


def test_duck_typed_callback_and_missing_methods() -> None:
    got: list[str] = []

    class Duck:
        def on_llm_start(self, prompt: str) -> None:
            got.append(prompt)

    call(Duck(), "on_llm_start", {"prompt": "p", "model": "m"})
    call(Duck(), "on_llm_end", {"response": None})  # no such method: nothing happens
    assert got == ["p"]


def test_instance_attribute_callable_is_honoured() -> None:
    got: list[str] = []
    cb = BaseCallback()
    cb.on_token = lambda token: got.append(token)  # type: ignore[method-assign]
    call(cb, "on_token", {"token": "t", "index": 1})
    assert got == ["t"]


def test_streaming_callback_function_and_subclass_without_super() -> None:
    tokens: list[str] = []
    call(StreamingCallback(on_token=tokens.append), "on_token", {"token": "a", "index": 0})

    class Rich(StreamingCallback):  # tutorial part 3.2 shape
        def __init__(self) -> None:
            self.buffer = ""
            self.started = False

        def on_llm_start(self, **kwargs: Any) -> None:
            self.buffer = ""
            self.started = True

        def on_token(self, token):  # type: ignore[no-untyped-def,override]
            self.buffer += token

        def on_llm_end(self, **kwargs: Any) -> None:
            self.buffer += "|"

    rich = Rich()
    call(rich, "on_llm_start", {"prompt": "x", "model": "m"})
    for t in ("Hel", "lo"):
        call(rich, "on_token", {"token": t, "index": 0})
    call(rich, "on_llm_end", {"response": None})
    call(StreamingCallback(), "on_token", {"token": "ignored"})  # no handler: fine
    assert (tokens, rich.buffer, rich.started) == (["a"], "Hello|", True)
    with pytest.raises(TypeError, match="on_token must be callable"):
        StreamingCallback(on_token="nope")  # type: ignore[arg-type]


# -- async callbacks ------------------------------------------------------------------------


class SlowAsync(AsyncBaseCallback):
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.events: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.done = threading.Event()

    async def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        await asyncio.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        self.events.append(("start", prompt))

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        await asyncio.sleep(self.delay)
        self.threads.add(threading.current_thread().name)
        self.events.append(("end", response.content))
        self.done.set()


def test_async_callback_on_sync_path_runs_on_background_loop_without_blocking(otel: Otel) -> None:
    cb = SlowAsync(delay=0.3)
    began = time.perf_counter()
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, prompt="p", answer="a")
    elapsed = time.perf_counter() - began
    assert elapsed < 0.25, "the app's thread waited for an async callback"
    assert cb.done.wait(5)
    assert otel.span_processor.force_flush(5000)
    assert sorted(cb.events) == [("end", "a"), ("start", "p")]
    assert cb.threads == {"rlm-toolkit-callbacks"}


async def test_async_callback_inside_running_loop_is_a_task_of_that_loop(otel: Otel) -> None:
    cb = SlowAsync(delay=0.05)
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer, prompt="p", answer="a")
    tasks = otel.span_processor.pending_tasks()
    assert len(tasks) == 2
    assert cb.events == []  # scheduled, not run inline
    await asyncio.gather(*tasks)
    assert cb.events == [("start", "p"), ("end", "a")]
    assert cb.threads == {threading.current_thread().name}
    assert otel.span_processor.pending_tasks() == []


async def test_raising_async_callback_is_isolated(
    otel: Otel, caplog_callbacks: pytest.LogCaptureFixture
) -> None:
    class Bad(AsyncBaseCallback):
        async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            raise ValueError("async bug")

    good = Recorder()
    with use_scope(otel.scope(Bad(), good)):
        chat_call(otel.tracer)
        chat_call(otel.tracer)
    await asyncio.gather(*otel.span_processor.pending_tasks())
    assert good.names == ["on_llm_start", "on_llm_end"] * 2
    assert [r.getMessage().split(" (")[0] for r in caplog_callbacks.records] == [
        "callback test_raising_async_callback_is_isolated.<locals>.Bad.on_llm_end raised"
    ]


def test_async_noops_are_not_scheduled(otel: Otel) -> None:
    class OnlyEnd(AsyncBaseCallback):
        async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            pass

    with use_scope(otel.scope(OnlyEnd())):
        chat_call(otel.tracer)
    assert otel.span_processor.force_flush(5000)
    assert otel.span_processor.pending_tasks() == []
