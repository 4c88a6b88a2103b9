"""Fixtures: in-memory OTel pipelines passed explicitly (never global), the offline server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit.genai import Consumer
from rlm_toolkit.testing import OpenAIServer


class TokenConsumer(LogRecordProcessor, Consumer):  # type: ignore[misc]
    """An in-process consumer that wants token events (and reads nothing else); it keeps the
    ``(event name, attributes, token text)`` of each in-process point event it is handed."""

    wants_tokens = True

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str | None]] = []

    def on_point_event(self, name: str, span: Any, attributes: Any, timestamp: int, payload: Any) -> None:
        self.events.append((name, dict(attributes), payload.token))

    def on_emit(self, log_record: Any) -> None:
        pass

    emit = on_emit

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Otel:
    tracer_provider: TracerProvider
    spans_exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    logger_provider: LoggerProvider
    logs_exporter: InMemoryLogRecordExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def logs(self, name: str | None = None) -> list[Any]:
        records = [r.log_record for r in self.logs_exporter.get_finished_logs()]
        return [r for r in records if name is None or r.event_name == name]

    def want_tokens(self) -> TokenConsumer:
        """Attach a consumer of token events to the logger provider (so they are made)."""
        consumer = TokenConsumer()
        self.logger_provider.add_log_record_processor(consumer)
        return consumer

    def metrics(self) -> dict[str, list[Any]]:
        """metric name -> data points."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Otel(tp, spans, mp, reader, lp, logs)
    tp.shutdown()
    mp.shutdown()
    lp.shutdown()


def instrument_with(otel: Otel, capture_content: Any = False) -> None:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        capture_content=capture_content,
    )


@pytest.fixture(params=[False, True], ids=["no_content", "content"])
def capture(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def instrumented(otel: Otel, capture: bool) -> Iterator[Otel]:
    instrument_with(otel, capture)
    yield otel
    rlm_toolkit.uninstrument()


@pytest.fixture
def plain_instrumented(otel: Otel) -> Iterator[Otel]:
    """Instrumented with capture off (for tests where the content mode does not matter)."""
    instrument_with(otel, False)
    yield otel
    rlm_toolkit.uninstrument()


@pytest.fixture(scope="module")
def module_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def server(module_server: OpenAIServer) -> OpenAIServer:
    module_server.reset()
    return module_server


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=2)
    yield c
    c.close()


@pytest.fixture
async def aclient(server: OpenAIServer) -> Any:
    c = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=2)
    yield c
    await c.close()
