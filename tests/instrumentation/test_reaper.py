"""Abandoned streams are ended by the reaper thread, never inside the garbage collector.

The finalizer only queues the stream with the abandonment time; the ``rlm-toolkit-reaper``
thread ends its span (with that time) and records its metrics, so a collection that happens
while the collecting thread holds a lock the span-end path needs cannot deadlock.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from rlm_toolkit.genai import _reaper
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

STREAM = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}], "stream": True}


class LockedEnd(SpanProcessor):
    """Takes a plain (non-reentrant) lock in ``on_end``, like an SDK processor's condition."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ended: list[tuple[str, str]] = []  # (span name, thread name)
        self.timed_out = 0

    def on_end(self, span: ReadableSpan) -> None:
        if not self.lock.acquire(timeout=3):  # a deadlock fails the test instead of hanging it
            self.timed_out += 1
            return
        try:
            self.ended.append((span.name, threading.current_thread().name))
        finally:
            self.lock.release()


@pytest.fixture
def locked(plain_instrumented: Otel) -> Iterator[LockedEnd]:
    processor = LockedEnd()
    plain_instrumented.tracer_provider.add_span_processor(processor)
    yield processor


def abandon_in_cycle(client: openai.OpenAI) -> None:
    stream: Any = client.chat.completions.create(**STREAM)
    next(iter(stream))
    cycle: list[Any] = [stream]
    cycle.append(cycle)
    del stream, cycle


def wait_for_spans(otel: Otel, count: int, timeout: float = 5.0) -> list[ReadableSpan]:
    deadline = time.monotonic() + timeout
    while len(otel.spans()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return otel.spans()


def test_reaper_ends_abandoned_stream_once_with_abandonment_time(
    plain_instrumented: Otel, locked: LockedEnd, client: openai.OpenAI, server: OpenAIServer
) -> None:
    abandon_in_cycle(client)
    # Holding the drain lock parks the reaper thread, so between the collection and the check
    # only the collector itself could have ended the span (the reaper ticking in between made
    # this flaky on a loaded machine).
    with _reaper._drain_lock:
        before = time.time_ns()
        assert gc.collect() > 0
        after = time.time_ns()
        assert plain_instrumented.spans() == []  # nothing ended inside the collection
    spans = wait_for_spans(plain_instrumented, 1)
    time.sleep(2 * _reaper.PERIOD_S)  # a second end would show up by now
    assert len(plain_instrumented.spans()) == 1
    (span,) = spans
    attrs = dict(span.attributes or {})
    assert (attrs["rlm.stream.end_reason"], attrs["rlm.stream.chunk_count"]) == ("abandoned", 1)
    assert span.end_time is not None and before <= span.end_time <= after
    assert locked.ended == [("chat gpt-4o", "rlm-toolkit-reaper")]
    durations = plain_instrumented.metrics()["gen_ai.client.operation.duration"]
    assert [p.count for p in durations] == [1]
    assert durations[0].sum <= (after - span.start_time) / 1e9 + 0.01  # abandonment, not reaping


class SleepsWhenFinalized:
    """Garbage whose finalizer blocks (releasing the GIL), like a socket closed by ``__del__``.

    A full test run leaves such garbage behind (unclosed clients, servers, files). Collected in
    the same pass as the abandoned stream, its finalizer runs after the stream was queued, and
    the reaper thread gets the GIL in the middle of ``gc.collect()``.
    """

    def __del__(self) -> None:
        time.sleep(3 * _reaper.PERIOD_S)


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("gil_released_during_gc", [False, True], ids=["plain_gc", "finalizer_sleeps"])
def test_gc_while_holding_the_span_end_lock_does_not_deadlock(
    plain_instrumented: Otel,
    locked: LockedEnd,
    client: openai.OpenAI,
    server: OpenAIServer,
    gil_released_during_gc: bool,
) -> None:
    abandon_in_cycle(client)
    if gil_released_during_gc:
        cycle: list[Any] = [SleepsWhenFinalized()]
        cycle.append(cycle)
        del cycle
    with locked.lock:  # this thread holds what span.end() needs, then the GC runs
        assert gc.collect() > 0
        assert locked.ended == []
    # Wait for what is asserted: the span reaches the in-memory exporter (the first processor)
    # before LockedEnd sees it, and with a GIL-releasing finalizer in the collection the reaper
    # is already blocked on ``locked.lock`` when this thread lets go of it.
    wait_for(lambda: locked.ended or locked.timed_out)
    spans = wait_for_spans(plain_instrumented, 1)
    assert [dict(s.attributes or {})["rlm.stream.end_reason"] for s in spans] == ["abandoned"]
    assert locked.timed_out == 0
    assert locked.ended == [("chat gpt-4o", "rlm-toolkit-reaper")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_reaps_its_abandoned_streams(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "warm"}])
    assert len(plain_instrumented.spans()) == 1
    pid = os.fork()
    if pid == 0:  # child: its own reaper must start and end the child's abandoned stream
        code = 1
        try:
            with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as child:
                abandon_in_cycle(child)
                gc.collect()
                spans = wait_for_spans(plain_instrumented, 2)
                reasons = [dict(s.attributes or {}).get("rlm.stream.end_reason") for s in spans]
                code = 0 if reasons == [None, "abandoned"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(plain_instrumented.spans()) == 1  # the parent saw nothing of the child's


def test_abandoned_stream_is_ended_at_interpreter_exit(server: OpenAIServer) -> None:
    script = textwrap.dedent(
        f"""
        import openai
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
        import rlm_toolkit

        class Print(SpanExporter):
            def export(self, spans):
                for s in spans:
                    print("SPAN", s.name, s.attributes.get("rlm.stream.end_reason"), flush=True)
                return SpanExportResult.SUCCESS

        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(Print()))
        rlm_toolkit.instrument(tracer_provider=tp)
        client = openai.OpenAI(base_url={server.base_url!r}, api_key="sk-test", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{{"role": "user", "content": "Hi"}}], stream=True
        )
        next(iter(stream))
        cycle = [stream, client]
        cycle.append(cycle)
        del stream, cycle, client
        print("EXIT", flush=True)
        """
    )
    env = {**os.environ, "RLM_TOOLKIT_STRICT": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["EXIT", "SPAN chat gpt-4o abandoned"]
