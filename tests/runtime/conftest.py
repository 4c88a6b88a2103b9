"""Fixtures: one offline server per test, SDK providers with in-memory exporters (never global)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from rlm_toolkit.testing import OpenAIServer


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


class SequentialIds(IdGenerator):  # type: ignore[misc]
    """Span ids 1, 2, 3... and trace ids 1, 2... in start order, so a span tree can be asserted
    with literal, readable ids."""

    def __init__(self) -> None:
        self._span = itertools.count(1)
        self._trace = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._span)

    def generate_trace_id(self) -> int:
        return next(self._trace)


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(id_generator=SequentialIds())
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Telemetry(tracer_provider, logger_provider, spans, logs)
    tracer_provider.shutdown()
    logger_provider.shutdown()


@pytest.fixture(scope="package", autouse=True)
def _undo_our_instrumentation() -> Iterator[None]:
    """A test that instruments ``openai`` (RLM itself never does): leave the process as these
    tests found it."""
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    was_instrumented = instrumentor.is_instrumented_by_opentelemetry
    yield
    if not was_instrumented and instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
