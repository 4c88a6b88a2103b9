"""The garbage collector running inside our exporters while they hold their lock.

An abandoned stream is noticed by a ``weakref.finalize`` callback, i.e. whenever the cyclic GC
runs -- at any allocation, also on a thread that is inside one of our exporters holding its
lock. The finalizer only queues the stream (``genai/_reaper.py``); the reaper thread ends its
span later, outside the collection. These tests force that collection at the worst moments (on
taking the lock, in the middle of a write/print) over real HTTP to the offline server with the
real ``openai`` client, and check that nothing ends or re-enters the exporter during it, that
there is no deadlock, and that the span ended afterwards by :func:`_reaper.drain` (what the
reaper thread does) is written whole, with the abandonment time. A span that genuinely ends on
the same thread in the middle of a write (a signal handler, a traced file the user passed) is
still queued and written after the interrupted one, whole.
"""

from __future__ import annotations

import gc
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit.exporters import ConsoleTreeExporter, JSONLSpanExporter
from rlm_toolkit.genai import _reaper
from rlm_toolkit.testing import OpenAIServer


class Collection:
    """One forced collection: how much it found, the wall clock around it, how many abandoned
    streams were queued right after it, and what ``probe`` saw then (still inside it)."""

    def __init__(self, probe: Callable[[], object]) -> None:
        self.probe = probe
        self.collected: int | None = None
        self.window = (0, 0)
        self.queued = 0
        self.seen: object = None

    def run(self) -> None:
        before = time.time_ns()
        self.collected = gc.collect()  # the abandoned stream's finalizer only queues it here
        self.window = (before, time.time_ns())
        self.queued = len(_reaper._PENDING)
        self.seen = self.probe()


class CollectWhileHeld:
    """Wraps an exporter's lock: once armed, the next acquisition runs ``action`` (a forced
    collection) while holding the real lock -- what an automatic collection at any allocation
    may do."""

    def __init__(self, lock: Any, action: Callable[[], None]) -> None:
        self.lock = lock
        self.action = action
        self.armed = False

    def __enter__(self) -> CollectWhileHeld:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got: bool = self.lock.acquire(blocking, timeout)
        if got and self.armed:
            self.armed = False
            self.action()
        return got

    def release(self) -> None:
        self.lock.release()


class Trigger:
    """Armed once, ``fire()`` runs its action (a forced collection, or a span ending directly)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.armed = False
        self.fired = 0

    def fire(self) -> None:
        if self.armed:
            self.armed = False
            self.fired += 1
            self.action()


class HalfWriteRaw:
    """Stands in for the writer's unbuffered file: writes half of a batch, fires the trigger (a
    GC at an allocation, or a signal handler ending a span), then writes the rest."""

    def __init__(self, raw: Any, trigger: Trigger) -> None:
        self.raw = raw
        self.trigger = trigger

    def write(self, data: Any) -> int:
        data = bytes(data)
        if not self.trigger.armed:
            return int(self.raw.write(data))
        half = len(data) // 2
        self.raw.write(data[:half])
        self.trigger.fire()
        self.raw.write(data[half:])
        return len(data)

    def close(self) -> None:
        self.raw.close()


class HalfWriteText(io.StringIO):
    """A console file whose next write is interrupted half-way by the trigger."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger = Trigger(lambda: None)

    def write(self, s: str) -> int:
        if not self.trigger.armed:
            return super().write(s)
        half = len(s) // 2
        super().write(s[:half])
        self.trigger.fire()
        super().write(s[half:])
        return len(s)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    server.reset()
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test-reentrancy", max_retries=0)
    yield c
    c.close()


@pytest.fixture
def gc_off() -> Iterator[None]:
    """No automatic collection while a test arranges its cycle (``gc.collect()`` still works)."""
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


@pytest.fixture
def drain(gc_off: None) -> Iterator[Callable[[], int]]:
    """The reaper thread paused (its ``drain`` does nothing): the test ends its abandoned stream
    itself with the real :func:`_reaper.drain`, when it chooses. Streams left over by earlier
    tests are ended first, so the count is the test's own."""
    real = _reaper.drain
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_reaper, "drain", lambda: 0)
        with _reaper._drain_lock:  # wait out a drain the reaper thread may be in
            pass
        gc.collect()
        real()
        yield real
        real()


@pytest.fixture
def instrumented() -> Iterator[Callable[[SpanExporter], tuple[TracerProvider, InMemorySpanExporter]]]:
    """Instrument the ``openai`` SDK with a provider that exports through the given exporter
    (and, after it, to memory: what has ended so far)."""
    made: list[tuple[TracerProvider, LoggerProvider, MeterProvider]] = []

    def make(exporter: SpanExporter) -> tuple[TracerProvider, InMemorySpanExporter]:
        rlm_toolkit.uninstrument()
        tp, lp, mp = TracerProvider(), LoggerProvider(), MeterProvider()
        memory = InMemorySpanExporter()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        tp.add_span_processor(SimpleSpanProcessor(memory))
        rlm_toolkit.instrument(tracer_provider=tp, logger_provider=lp, meter_provider=mp)
        made.append((tp, lp, mp))
        return tp, memory

    yield make
    rlm_toolkit.uninstrument()
    for tp, lp, mp in made:
        tp.shutdown()
        lp.shutdown()
        mp.shutdown()


Instrumented = Callable[[SpanExporter], tuple[TracerProvider, InMemorySpanExporter]]


def abandon_stream(client: openai.OpenAI) -> None:
    """Start a stream, read one chunk and drop it inside a reference cycle: only the cyclic
    garbage collector can notice it now (its finalizer queues it for the reaper)."""
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}], stream=True
    )
    next(iter(stream))
    cycle: list[Any] = [stream]
    cycle.append(cycle)
    del stream, cycle


def run_guarded(outer: Callable[[], None]) -> None:
    """Run ``outer`` on a thread; fail instead of hanging on a deadlock."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outer()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=target, name="reentrancy-test", daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), "deadlock: the GC re-entered an exporter holding its own lock"
    assert errors == []


def names(memory: InMemorySpanExporter) -> list[str]:
    return [span.name for span in memory.get_finished_spans()]


def assert_collected_then_drained(
    collection: Collection, drain: Callable[[], int], memory: InMemorySpanExporter
) -> ReadableSpan:
    """The collection found the cycle and only queued the stream; ``drain`` ends exactly that
    one, ``abandoned``, with the time it was collected (not the time it was drained)."""
    assert collection.collected is not None and collection.collected > 0
    assert collection.queued == 1
    assert drain() == 1
    span = memory.get_finished_spans()[-1]
    assert (span.name, dict(span.attributes or {})["rlm.stream.end_reason"]) == ("chat gpt-4o", "abandoned")
    before, after = collection.window
    assert span.end_time is not None and before <= span.end_time <= after
    assert drain() == 0  # ended once
    return span


def _attrs(line: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in line.get("attributes", [])}


def _jsonl(path: Path) -> list[tuple[str, str | None]]:
    """(name, end reason) per line; ``json.loads`` fails on a torn or interleaved line."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(line["name"], _attrs(line).get("rlm.stream.end_reason")) for line in lines]


def end_span(provider: TracerProvider, name: str) -> None:
    provider.get_tracer("reentrancy-test").start_span(name).end()


# -- JSONL ------------------------------------------------------------------------------------


def test_jsonl_gc_on_taking_the_lock_only_queues_the_abandoned_stream(
    client: openai.OpenAI, instrumented: Instrumented, tmp_path: Path, drain: Callable[[], int]
) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    provider, memory = instrumented(exporter)
    collection = Collection(lambda: (path.read_bytes() if path.exists() else b"", names(memory)))
    lock = CollectWhileHeld(exporter._writer._lock, collection.run)
    exporter._writer._lock = lock  # type: ignore[assignment]
    abandon_stream(client)
    lock.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    # Nothing ended, nothing written inside the collection ("outer" is being exported).
    assert collection.seen == (b"", [])
    assert _jsonl(path) == [("outer", None)]
    assert_collected_then_drained(collection, drain, memory)
    assert _jsonl(path) == [("outer", None), ("chat gpt-4o", "abandoned")]
    assert exporter._writer._pending == [] and exporter._writer._draining is False


def test_jsonl_gc_in_the_middle_of_a_write_never_tears_a_line(
    client: openai.OpenAI, instrumented: Instrumented, tmp_path: Path, drain: Callable[[], int]
) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    provider, memory = instrumented(exporter)
    end_span(provider, "first")  # opens the file
    first = path.read_bytes()
    writer = exporter._writer
    collection = Collection(lambda: (path.read_bytes(), names(memory)))
    trigger = Trigger(collection.run)
    writer._file = HalfWriteRaw(writer._file, trigger)  # type: ignore[assignment]
    abandon_stream(client)
    trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert trigger.fired == 1
    # Inside the collection: the first line and half of "outer"'s, nothing else.
    seen_bytes, seen_names = collection.seen  # type: ignore[misc]
    assert seen_bytes.startswith(first) and b'"outer"' in seen_bytes and not seen_bytes.endswith(b"\n")
    assert b"chat gpt-4o" not in seen_bytes and seen_names == ["first"]
    assert _jsonl(path) == [("first", None), ("outer", None)]
    assert_collected_then_drained(collection, drain, memory)
    assert _jsonl(path) == [("first", None), ("outer", None), ("chat gpt-4o", "abandoned")]
    assert writer._pending == [] and writer._draining is False


def test_jsonl_a_span_ended_in_the_middle_of_a_write_is_written_after_it(
    instrumented: Instrumented, tmp_path: Path
) -> None:
    # Still possible without the GC: a signal handler ending a span on this thread mid-write.
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    provider, memory = instrumented(exporter)
    end_span(provider, "first")  # opens the file
    writer = exporter._writer
    trigger = Trigger(lambda: end_span(provider, "inner"))
    writer._file = HalfWriteRaw(writer._file, trigger)  # type: ignore[assignment]
    trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert trigger.fired == 1
    # The re-entrant export was queued and written after the interrupted line, whole.
    assert _jsonl(path) == [("first", None), ("outer", None), ("inner", None)]
    assert names(memory) == ["first", "inner", "outer"]
    assert writer._pending == [] and writer._draining is False


def test_jsonl_writer_released_during_a_reentrant_write_closes_after_it(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    writer = exporter._writer
    calls: list[str] = []

    class ReleasingRaw:
        def __init__(self) -> None:
            self.closed = False

        def write(self, data: Any) -> int:
            calls.append("write")
            if len(calls) == 1:
                exporter.shutdown()  # the last user lets go while its batch is being written
            return len(bytes(data))

        def close(self) -> None:
            calls.append("close")

    writer._file = ReleasingRaw()  # type: ignore[assignment]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    end_span(provider, "outer")
    assert calls == ["write", "close"]
    assert writer._file is None and writer._draining is False


# -- console tree -----------------------------------------------------------------------------


def _expected(exporter: ConsoleTreeExporter, memory: InMemorySpanExporter, *names: str) -> str:
    """Each named span's own trace, rendered alone, in the given order."""
    spans = {span.name: span for span in memory.get_finished_spans()}
    return "".join(exporter.render([spans[name]]) for name in names)


def test_tree_gc_on_taking_the_lock_only_queues_the_abandoned_stream(
    client: openai.OpenAI, instrumented: Instrumented, drain: Callable[[], int]
) -> None:
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out, per_trace=True, width=100, color=False)
    provider, memory = instrumented(exporter)
    collection = Collection(lambda: (out.getvalue(), names(memory)))
    lock = CollectWhileHeld(exporter._lock, collection.run)
    exporter._lock = lock  # type: ignore[assignment]
    abandon_stream(client)
    lock.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert collection.seen == ("", [])  # nothing printed, nothing ended inside it
    assert out.getvalue() == _expected(exporter, memory, "outer")
    assert_collected_then_drained(collection, drain, memory)
    assert out.getvalue() == _expected(exporter, memory, "outer", "chat gpt-4o")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_gc_in_the_middle_of_a_print_prints_the_other_trace_after(
    client: openai.OpenAI, instrumented: Instrumented, drain: Callable[[], int]
) -> None:
    out = HalfWriteText()
    exporter = ConsoleTreeExporter(out, per_trace=True, width=100, color=False)
    provider, memory = instrumented(exporter)
    collection = Collection(lambda: (out.getvalue(), names(memory)))
    out.trigger = Trigger(collection.run)
    abandon_stream(client)
    out.trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert out.trigger.fired == 1
    seen_text, seen_names = collection.seen  # type: ignore[misc]
    outer = _expected(exporter, memory, "outer")
    assert outer.startswith(seen_text) and seen_text != outer  # part of the outer tree, no more
    assert seen_names == []
    assert out.getvalue() == outer
    assert_collected_then_drained(collection, drain, memory)
    # The outer tree whole, then the abandoned stream's tree, whole.
    assert out.getvalue() == _expected(exporter, memory, "outer", "chat gpt-4o")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_a_span_ended_in_the_middle_of_a_print_is_printed_after_it(instrumented: Instrumented) -> None:
    # Still possible without the GC: the file the user passed ends a span on this thread (traced
    # I/O, a signal handler) in the middle of a print.
    out = HalfWriteText()
    exporter = ConsoleTreeExporter(out, per_trace=True, width=100, color=False)
    provider, memory = instrumented(exporter)
    out.trigger = Trigger(lambda: end_span(provider, "inner"))
    out.trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert out.trigger.fired == 1
    # The outer tree whole, then the inner one (queued while printing), whole.
    assert out.getvalue() == _expected(exporter, memory, "outer", "inner")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_gc_during_a_flush_print_leaves_the_abandoned_stream_to_the_next_flush(
    client: openai.OpenAI, instrumented: Instrumented, drain: Callable[[], int]
) -> None:
    out = HalfWriteText()
    exporter = ConsoleTreeExporter(out, width=100, color=False)  # prints at flush/shutdown only
    provider, memory = instrumented(exporter)
    collection = Collection(lambda: (out.getvalue(), names(memory)))
    out.trigger = Trigger(collection.run)
    end_span(provider, "outer")
    abandon_stream(client)
    assert out.getvalue() == ""
    out.trigger.armed = True
    run_guarded(lambda: exporter.force_flush())
    assert out.trigger.fired == 1
    seen_text, seen_names = collection.seen  # type: ignore[misc]
    assert seen_names == ["outer"] and "chat gpt-4o" not in seen_text
    assert out.getvalue() == _expected(exporter, memory, "outer")
    assert_collected_then_drained(collection, drain, memory)
    run_guarded(lambda: exporter.shutdown())
    assert out.getvalue() == _expected(exporter, memory, "outer", "chat gpt-4o")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_flush_prints_a_span_that_ended_during_its_print(instrumented: Instrumented) -> None:
    # A span ending on this thread during the shutdown print (see above, without the GC): nothing
    # is left behind for a flush that will never come -- a second round prints it.
    out = HalfWriteText()
    exporter = ConsoleTreeExporter(out, width=100, color=False)  # prints at flush/shutdown only
    provider, memory = instrumented(exporter)
    out.trigger = Trigger(lambda: end_span(provider, "inner"))
    end_span(provider, "outer")
    assert out.getvalue() == ""
    out.trigger.armed = True
    run_guarded(lambda: exporter.shutdown())
    assert out.trigger.fired == 1
    assert out.getvalue() == _expected(exporter, memory, "outer", "inner")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False
