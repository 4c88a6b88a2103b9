"""A ``--jsonl`` file tells which convention mode wrote it (issue #20): every span, log record
and metric line keeps its instrumentation scope's schema URL, and reading the spans back
preserves it."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import rlm_toolkit
from rlm_toolkit.exporters import (
    JSONLLogExporter,
    JSONLMetricExporter,
    JSONLSpanExporter,
    read_spans_jsonl,
)
from rlm_toolkit.testing import OpenAIServer

SCHEMA = {
    "v1.41": "https://opentelemetry.io/schemas/1.41.0",
    "latest": "https://opentelemetry.io/schemas/gen-ai/1.42.0",
}


@pytest.mark.parametrize("mode", sorted(SCHEMA))
def test_jsonl_keeps_the_scope_schema_url(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(path)))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(JSONLLogExporter(path)))
    reader = PeriodicExportingMetricReader(JSONLMetricExporter(path), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    rlm_toolkit.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        capture_content="event_only",  # a details record per call: a log line in both modes
        semconv=mode,
    )
    try:
        with OpenAIServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
            server.queue_reply("Hi!")
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            server.queue_fault("rate_limit")
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            client.close()
    finally:
        rlm_toolkit.uninstrument()
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = {
        "span" if "spanId" in obj and "startTimeUnixNano" in obj else "metric" if "unit" in obj else "log"
        for obj in lines
    }
    assert kinds == {"span", "log", "metric"}
    ours = [obj for obj in lines if obj["scope"].get("name") == "rlm_toolkit.instrumentation.openai"]
    assert ours and {obj["scope"].get("schemaUrl") for obj in ours} == {SCHEMA[mode]}
    spans = read_spans_jsonl(path)
    assert len(spans) == 2
    assert {s.instrumentation_scope.schema_url for s in spans if s.instrumentation_scope} == {SCHEMA[mode]}
