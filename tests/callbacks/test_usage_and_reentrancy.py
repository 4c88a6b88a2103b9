"""Unknown usage is not zero; the GC inside a built-in's lock ends nothing there; uninitialised FileLog.

Real HTTP to the offline server, the real ``openai`` client and our instrumentation.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import pathlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from rich.console import Console

from rlm_toolkit.callbacks import (
    CallbackSpanProcessor,
    ConsoleCallback,
    FileLogCallback,
    MetricsCallback,
    _console,
    _dispatch,
)
from rlm_toolkit.callbacks._failures import Failure
from rlm_toolkit.callbacks._span_processor import call
from rlm_toolkit.genai import _reaper
from rlm_toolkit.genai._handler import span_processors_of

from .conftest import Recorder, Stack
from .conftest import chat as _chat

MS = r"\d+ ms"


def _console_out() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=False), out


def _lines(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- unknown usage ----------------------------------------------------------------------------


def test_stream_without_usage_is_reported_as_unknown_not_zero(
    stack: Stack, client: openai.OpenAI, tmp_path: pathlib.Path
) -> None:
    console, out = _console_out()
    path = tmp_path / "log.jsonl"
    metrics = MetricsCallback()
    with FileLogCallback(path) as file_log:
        stack.instrument(callbacks=[ConsoleCallback(show_cost=True, console=console), file_log, metrics])
        text = "".join(c.choices[0].delta.content or "" for c in _chat(client, stream=True) if c.choices)
        assert text  # the app got its stream
        chunks = list(_chat(client, stream=True, stream_options={"include_usage": True}))
        reported = chunks[-1].usage
        assert reported is not None and reported.total_tokens > 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"✓ chat gpt-4o · tokens n/a · {MS} · cost n/a", lines[0]), lines[0]
    assert re.fullmatch(
        rf"✓ chat gpt-4o · {reported.total_tokens} tokens \({reported.prompt_tokens} in, "
        rf"{reported.completion_tokens} out\) · {MS} · \$\d\.\d{{6}}",
        lines[1],
    ), lines[1]
    ends = [line for line in _lines(path) if line["event"] == "llm_end"]
    tokens = ("prompt_tokens", "completion_tokens", "total_tokens", "cost")
    assert [{k: line[k] for k in tokens} for line in ends] == [
        {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None, "cost": None},
        {
            "prompt_tokens": reported.prompt_tokens,
            "completion_tokens": reported.completion_tokens,
            "total_tokens": reported.total_tokens,
            "cost": pytest.approx(ends[1]["cost"]),
        },
    ]
    assert ends[1]["cost"] > 0
    got = metrics.get_metrics()
    assert (got["total_calls"], got["total_tokens"], got["calls_without_usage"]) == (
        2,
        reported.total_tokens,
        1,
    )
    assert got["by_model"] == {"gpt-4o": {"calls": 2, "tokens": reported.total_tokens}}


# -- the garbage collector running inside a built-in while it holds its lock -----------------
# An abandoned stream's finalizer only queues it; the reaper thread ends its span (and so calls
# the callbacks) later, outside the collection -- never inside a callback holding its lock.


class CollectWhileHeld:
    """Wraps a callback's own lock: once armed, the next acquisition runs ``gc.collect()`` while
    holding the real lock -- what an automatic collection at any allocation may do -- and records
    the wall clock around it, how many abandoned streams were queued and what ``probe`` saw."""

    def __init__(self, lock: Any, probe: Callable[[], object]) -> None:
        self.lock = lock
        self.probe = probe
        self.armed = False
        self.collected: int | None = None
        self.window = (0, 0)
        self.queued = 0
        self.seen: object = None

    def __enter__(self) -> CollectWhileHeld:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got: bool = self.lock.acquire(blocking, timeout)
        if got and self.armed:
            self.armed = False
            before = time.time_ns()
            self.collected = gc.collect()  # the abandoned stream's finalizer only queues it here
            self.window = (before, time.time_ns())
            self.queued = len(_reaper._PENDING)
            self.seen = self.probe()
        return got

    def release(self) -> None:
        self.lock.release()


@pytest.fixture
def drain() -> Iterator[Callable[[], int]]:
    """Automatic GC off while a test arranges its cycle; the reaper thread paused (its ``drain``
    does nothing), so the test ends the abandoned stream itself with the real
    :func:`_reaper.drain`. Streams left over by earlier tests are ended first."""
    was = gc.isenabled()
    gc.disable()
    real = _reaper.drain
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_reaper, "drain", lambda: 0)
            with _reaper._drain_lock:  # wait out a drain the reaper thread may be in
                pass
            gc.collect()
            real()
            yield real
            real()
    finally:
        if was:
            gc.enable()


def abandon_stream(client: openai.OpenAI) -> None:
    """Start a stream, read one chunk and drop it inside a reference cycle: only the cyclic
    garbage collector can notice it now (its ``weakref.finalize`` queues it for the reaper)."""
    stream = _chat(client, stream=True)
    next(stream)
    cycle: list[Any] = [stream]
    cycle.append(cycle)
    del stream, cycle


def run_guarded(outer: Callable[[], None], lock: CollectWhileHeld, stack: Stack) -> None:
    """Run ``outer`` (which takes ``lock``) on a thread; fail instead of hanging on a deadlock.
    The collection inside it found the cycle and only queued the stream: no span ended."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outer()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    lock.armed = True
    worker = threading.Thread(target=target, name="reentrancy-test", daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), "deadlock: the GC re-entered a callback holding its own lock"
    assert errors == []
    assert lock.collected is not None and lock.collected > 0
    assert lock.queued == 1
    assert stack.spans.get_finished_spans() == ()


def drain_one(drain: Callable[[], int], lock: CollectWhileHeld, stack: Stack) -> None:
    """``drain`` (what the reaper does) ends exactly the one abandoned span, with the time it was
    collected, once."""
    assert drain() == 1
    (span,) = stack.spans.get_finished_spans()
    assert (span.name, dict(span.attributes or {})["rlm.stream.end_reason"]) == ("chat gpt-4o", "abandoned")
    before, after = lock.window
    assert span.end_time is not None and before <= span.end_time <= after
    assert drain() == 0


def _events(path: pathlib.Path) -> list[tuple[str, str | None]]:
    if not path.exists():
        return []
    return [(line["event"], line["operation"]) for line in _lines(path)]


def test_file_log_gc_holding_its_lock_writes_the_abandoned_stream_after(
    stack: Stack, client: openai.OpenAI, tmp_path: pathlib.Path, drain: Callable[[], int]
) -> None:
    path = tmp_path / "log.jsonl"
    cb = FileLogCallback(path)
    lock = CollectWhileHeld(cb._lock, lambda: _events(path))
    cb._lock = lock  # type: ignore[assignment]
    stack.instrument(callbacks=[cb])
    abandon_stream(client)
    run_guarded(lambda: cb.on_run_start(prompt="outer"), lock, stack)
    assert lock.seen == [("llm_start", "chat")]  # nothing written inside the collection
    drain_one(drain, lock, stack)
    cb.close()
    # Every line whole, the abandoned stream's end after the interrupted call's line.
    assert _events(path) == [("llm_start", "chat"), ("run_start", None), ("llm_end", "chat")]


def test_metrics_gc_holding_its_lock_counts_the_abandoned_stream_once_after(
    stack: Stack, client: openai.OpenAI, drain: Callable[[], int]
) -> None:
    metrics = MetricsCallback()

    def counts() -> tuple[int, int, int]:
        got = metrics.get_metrics()
        return got["total_calls"], got["retries"], got["calls_without_usage"]

    lock = CollectWhileHeld(metrics._metrics_state.lock, counts)
    metrics._metrics_state.lock = lock  # type: ignore[assignment]
    stack.instrument(callbacks=[metrics])
    abandon_stream(client)
    run_guarded(
        lambda: call(metrics, "on_retry", {"attempt": 1, "max_attempts": 2, "error": None}), lock, stack
    )
    assert lock.seen == (0, 0, 0)  # nothing recorded inside the collection
    assert counts() == (0, 1, 0)
    drain_one(drain, lock, stack)
    got = metrics.get_metrics()
    assert (got["total_calls"], got["retries"], got["calls_without_usage"], got["by_model"]) == (
        1,
        1,
        1,
        {"gpt-4o": {"calls": 1, "tokens": 0}},
    )


def test_console_gc_holding_its_lock_prints_the_abandoned_stream_after(
    stack: Stack, client: openai.OpenAI, drain: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    console, out = _console_out()
    cb = ConsoleCallback(console=console)
    lock = CollectWhileHeld(_console._console_lock, out.getvalue)
    monkeypatch.setattr(_console, "_console_lock", lock)
    stack.instrument(callbacks=[cb])
    abandon_stream(client)
    error = {"error": RuntimeError("outer"), "operation": "chat", "model": "m", "duration_ms": 1.0}
    run_guarded(lambda: call(cb, "on_error", error), lock, stack)
    assert lock.seen == ""  # nothing printed inside the collection
    assert out.getvalue() == "✗ chat m · RuntimeError: outer · 1 ms\n"
    drain_one(drain, lock, stack)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == "✗ chat m · RuntimeError: outer · 1 ms"
    assert re.fullmatch(rf"✓ chat gpt-4o · tokens n/a · {MS}", lines[1]), lines[1]


def test_dispatch_gc_holding_the_plans_lock_calls_the_abandoned_stream_callbacks_after(
    stack: Stack, client: openai.OpenAI, drain: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Fresh(Recorder):  # a new class: its method plans are not cached yet
        pass

    rec = Fresh()
    lock = CollectWhileHeld(_dispatch._plans_lock, lambda: list(rec.names))
    monkeypatch.setattr(_dispatch, "_plans_lock", lock)
    stack.instrument(callbacks=[rec])
    abandon_stream(client)  # on_llm_start is planned; on_llm_end is not yet

    class Other(Recorder):
        pass

    other = Other()
    run_guarded(lambda: call(other, "on_retry", {"attempt": 1}), lock, stack)
    assert lock.seen == ["on_llm_start"]  # on_llm_end was not planned/called inside it
    assert other.names == ["on_retry"]
    drain_one(drain, lock, stack)
    assert rec.names == ["on_llm_start", "on_llm_end"]
    assert other.names == ["on_retry"]


def test_failure_table_gc_holding_its_lock_ends_the_abandoned_stream_after(
    stack: Stack, client: openai.OpenAI, drain: Callable[[], int]
) -> None:
    rec = Recorder()
    stack.instrument(callbacks=[rec])
    (processor,) = [
        p for p in span_processors_of(stack.tracer_provider) if isinstance(p, CallbackSpanProcessor)
    ]
    table = processor._failures
    lock = CollectWhileHeld(table._lock, lambda: (list(rec.names), len(table)))
    table._lock = lock  # type: ignore[assignment]
    failure = Failure(None, "E", None, ())
    table.file(1, [failure])  # something waiting, so ending a span looks in the table
    abandon_stream(client)
    run_guarded(lambda: table.file(2, [failure]), lock, stack)
    assert lock.seen == (["on_llm_start"], 1)  # the span did not end (nor look) inside it
    drain_one(drain, lock, stack)
    assert rec.names == ["on_llm_start", "on_llm_end"]
    assert (table.take(1), table.take(2), len(table)) == ([failure], [failure], 0)


# -- a FileLogCallback subclass that skipped super().__init__() --------------------------------


def test_uninitialised_file_log_subclass_says_what_is_wrong_once(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rlm_toolkit.callbacks")

    class MyLog(FileLogCallback):
        def __init__(self, path: pathlib.Path) -> None:
            self.path = path  # forgot super().__init__(path)

    cb = MyLog(tmp_path / "log.jsonl")
    call(cb, "on_llm_start", {"prompt": "p"})
    call(cb, "on_error", {"error": RuntimeError("x")})
    call(cb, "on_llm_start", {"prompt": "p"})
    cb.close()  # nothing to close, no error
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "rlm_toolkit.callbacks",
            "WARNING",
            "FileLogCallback subclass "
            "test_uninitialised_file_log_subclass_says_what_is_wrong_once.<locals>.MyLog "
            "did not call super().__init__(log_path); nothing is written. Call "
            "super().__init__(log_path, ...) from "
            "test_uninitialised_file_log_subclass_says_what_is_wrong_once.<locals>.MyLog.__init__ "
            "(logged once)",
        )
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert not (tmp_path / "log.jsonl").exists()
