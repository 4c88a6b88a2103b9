"""The garbage collector re-entering our exporters while they hold their lock.

An abandoned stream ends its span from a ``weakref.finalize`` callback, i.e. whenever the cyclic
GC runs -- at any allocation, also on a thread that is inside one of our exporters holding its
lock. With a ``SimpleSpanProcessor`` that span's export comes straight back into the same
exporter. These tests force that collection at the worst moments (on taking the lock, in the
middle of a write/print) over real HTTP to the offline server with the real ``openai`` client,
and check there is no deadlock and no torn line or interleaved tree.
"""

from __future__ import annotations

import gc
import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit.exporters import ConsoleTreeExporter, JSONLSpanExporter
from rlm_toolkit.testing import OpenAIServer


class CollectWhileHeld:
    """Wraps an exporter's lock: once armed, the next acquisition runs ``gc.collect()`` while
    holding the real lock -- what an automatic collection at any allocation may do."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.armed = False
        self.collected: int | None = None

    def __enter__(self) -> CollectWhileHeld:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got: bool = self.lock.acquire(blocking, timeout)
        if got and self.armed:
            self.armed = False
            self.collected = gc.collect()  # the abandoned stream's finalizer ends its span here
        return got

    def release(self) -> None:
        self.lock.release()


class Trigger:
    """Armed once, ``fire()`` runs a collection and records how much it found."""

    def __init__(self) -> None:
        self.armed = False
        self.collected: int | None = None

    def fire(self) -> None:
        if self.armed:
            self.armed = False
            self.collected = gc.collect()


class HalfWriteRaw:
    """Stands in for the writer's unbuffered file: writes half of a batch, lets the GC run (as an
    allocation inside a buffered writer could), then writes the rest."""

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
    """A console file whose next write is interrupted half-way by a collection."""

    def __init__(self, trigger: Trigger) -> None:
        super().__init__()
        self.trigger = trigger

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
def instrumented() -> Iterator[Callable[[SpanExporter], TracerProvider]]:
    """Instrument the ``openai`` SDK with a provider that exports through the given exporter."""
    made: list[tuple[TracerProvider, LoggerProvider, MeterProvider]] = []

    def make(exporter: SpanExporter) -> TracerProvider:
        rlm_toolkit.uninstrument()
        tp, lp, mp = TracerProvider(), LoggerProvider(), MeterProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        rlm_toolkit.instrument(tracer_provider=tp, logger_provider=lp, meter_provider=mp)
        made.append((tp, lp, mp))
        return tp

    yield make
    rlm_toolkit.uninstrument()
    for tp, lp, mp in made:
        tp.shutdown()
        lp.shutdown()
        mp.shutdown()


def abandon_stream(client: openai.OpenAI) -> None:
    """Start a stream, read one chunk and drop it inside a reference cycle: only the cyclic
    garbage collector can end it now (its finalizer -> ``rlm.stream.end_reason=abandoned``)."""
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


def _attrs(line: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in line.get("attributes", [])}


def _jsonl(path: Path) -> list[tuple[str, str | None]]:
    """(name, end reason) per line; ``json.loads`` fails on a torn or interleaved line."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(line["name"], _attrs(line).get("rlm.stream.end_reason")) for line in lines]


def end_span(provider: TracerProvider, name: str) -> None:
    provider.get_tracer("reentrancy-test").start_span(name).end()


# -- JSONL ------------------------------------------------------------------------------------


def test_jsonl_gc_on_taking_the_lock(
    client: openai.OpenAI,
    instrumented: Callable[[SpanExporter], TracerProvider],
    tmp_path: Path,
    gc_off: None,
) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    provider = instrumented(exporter)
    lock = CollectWhileHeld(exporter._writer._lock)
    exporter._writer._lock = lock  # type: ignore[assignment]
    abandon_stream(client)
    lock.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert lock.collected is not None and lock.collected > 0
    # The re-entrant export ran to the end first (the outer had not queued yet), then the outer.
    assert _jsonl(path) == [("chat gpt-4o", "abandoned"), ("outer", None)]


def test_jsonl_gc_in_the_middle_of_a_write_never_tears_a_line(
    client: openai.OpenAI,
    instrumented: Callable[[SpanExporter], TracerProvider],
    tmp_path: Path,
    gc_off: None,
) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JSONLSpanExporter(path)
    provider = instrumented(exporter)
    end_span(provider, "first")  # opens the file
    writer = exporter._writer
    trigger = Trigger()
    writer._file = HalfWriteRaw(writer._file, trigger)  # type: ignore[assignment]
    abandon_stream(client)
    trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert trigger.collected is not None and trigger.collected > 0
    # The re-entrant export was queued and written after the interrupted line, whole.
    assert _jsonl(path) == [("first", None), ("outer", None), ("chat gpt-4o", "abandoned")]
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


def test_tree_gc_on_taking_the_lock(
    client: openai.OpenAI, instrumented: Callable[[SpanExporter], TracerProvider], gc_off: None
) -> None:
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out, per_trace=True, width=100, color=False)
    provider = instrumented(exporter)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    lock = CollectWhileHeld(exporter._lock)
    exporter._lock = lock  # type: ignore[assignment]
    abandon_stream(client)
    lock.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert lock.collected is not None and lock.collected > 0
    # The re-entrant export ran to the end first (the outer had not queued yet), then the outer.
    assert out.getvalue() == _expected(exporter, memory, "chat gpt-4o", "outer")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_gc_in_the_middle_of_a_print_prints_the_other_trace_after(
    client: openai.OpenAI, instrumented: Callable[[SpanExporter], TracerProvider], gc_off: None
) -> None:
    trigger = Trigger()
    out = HalfWriteText(trigger)
    exporter = ConsoleTreeExporter(out, per_trace=True, width=100, color=False)
    provider = instrumented(exporter)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    abandon_stream(client)
    trigger.armed = True
    run_guarded(lambda: end_span(provider, "outer"))
    assert trigger.collected is not None and trigger.collected > 0
    # The outer tree whole, then the abandoned stream's tree (queued while printing), whole.
    assert out.getvalue() == _expected(exporter, memory, "outer", "chat gpt-4o")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False


def test_tree_flush_prints_a_span_that_ended_during_its_print(
    client: openai.OpenAI, instrumented: Callable[[SpanExporter], TracerProvider], gc_off: None
) -> None:
    trigger = Trigger()
    out = HalfWriteText(trigger)
    exporter = ConsoleTreeExporter(out, width=100, color=False)  # prints at flush/shutdown only
    provider = instrumented(exporter)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    end_span(provider, "outer")
    abandon_stream(client)
    assert out.getvalue() == ""
    trigger.armed = True
    run_guarded(lambda: exporter.shutdown())
    assert trigger.collected is not None and trigger.collected > 0
    # Nothing is left behind for a flush that will never come: a second round prints it.
    assert out.getvalue() == _expected(exporter, memory, "outer", "chat gpt-4o")
    assert exporter._pending == [] and exporter._spans == [] and exporter._draining is False
