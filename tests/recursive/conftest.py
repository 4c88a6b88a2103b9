"""Fixtures: an offline server per test, SDK providers with in-memory exporters (never global)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer

API_KEY = "sk-recursive-test-secret"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@dataclass
class Otel:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logger_provider = LoggerProvider()
    yield Otel(tracer_provider, logger_provider, meter_provider, spans, reader)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()


def make_rlm(server: OpenAIServer, otel: Otel, *callbacks: Any, **options: Any) -> RLM:
    return RLM.from_openai(
        options.pop("model", "gpt-4o-mini"),
        callbacks=list(callbacks),
        tracer_provider=otel.tracer_provider,
        logger_provider=otel.logger_provider,
        meter_provider=otel.meter_provider,
        api_key=API_KEY,
        base_url=server.base_url,
        **options,
    )


def repl(code: str) -> str:
    """A model reply that is one ``repl`` code block (the paper's convention)."""
    return f"```repl\n{code}\n```"


def children_of_this_process() -> list[int]:
    """Live sandbox workers among this process's children (a run must leave none).

    Only the sandbox's own workers count (``python -I -S -B .../_worker.py``): other suites in
    the same pytest process leave long-lived helpers that are not a run's to clean up (the
    multiprocessing resource tracker of an eval pool, Ray's processes), and counting those made
    these tests depend on which tests ran before them.
    """
    pids: list[int] = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return [pid for pid in pids if _is_sandbox_worker(pid)]


def _is_sandbox_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False  # gone (or a zombie being reaped): not running
    return argv[1:4] == [b"-I", b"-S", b"-B"] and len(argv) > 4 and argv[4].endswith(b"_worker.py")


def cpu_ticks_of_children() -> int:
    """User CPU clock ticks of this process's live children (a spinning sandbox worker's grow)."""
    total = 0
    for pid in children_of_this_process():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11])  # utime: field 14 of stat, the 12th after "pid (comm)"
    return total


def tree(spans: list[ReadableSpan]) -> list[Any]:
    """The span tree as nested ``(name, [children...])`` in start order."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)

    def build(parent: int | None) -> list[Any]:
        return [
            (s.name, build(s.context.span_id)) for s in by_parent.get(parent, []) if s.context is not None
        ]

    return build(None)


@pytest.fixture(scope="package", autouse=True)
def _undo_our_instrumentation() -> Iterator[None]:
    """RLM instruments ``openai`` when nobody did; leave the process as these tests found it."""
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    was_instrumented = instrumentor.is_instrumented_by_opentelemetry
    yield
    if not was_instrumented and instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


class Recorder:
    """A callback recording every event as (method, keywords), in order (threads included)."""

    def __init__(self) -> None:
        import threading

        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, name: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((name, kwargs))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.events if n == name]

    def on_run_start(self, prompt: str, **kwargs: Any) -> None:
        self._add("on_run_start", {"prompt": prompt, **kwargs})

    def on_run_end(self, result: Any, **kwargs: Any) -> None:
        self._add("on_run_end", {"result": result, **kwargs})

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        self._add("on_llm_start", {"prompt": prompt, **kwargs})

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self._add("on_llm_end", {"response": response, **kwargs})

    def on_tool_start(self, tool_name: str, tool_input: Any = None, **kwargs: Any) -> None:
        self._add("on_tool_start", {"tool_name": tool_name, "tool_input": tool_input, **kwargs})

    def on_tool_end(self, tool_name: str, tool_output: Any = None, **kwargs: Any) -> None:
        self._add("on_tool_end", {"tool_name": tool_name, "tool_output": tool_output, **kwargs})

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        self._add("on_error", {"error": error, **kwargs})
