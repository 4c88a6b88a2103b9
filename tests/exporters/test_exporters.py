"""JSONL exporters (wire format pinned), read-back/replay, and the console trace tree."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from rlm_toolkit.exporters import (
    ConsoleTreeExporter,
    JSONLLogExporter,
    JSONLMetricExporter,
    JSONLSpanExporter,
    read_spans_jsonl,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
RESOURCE = Resource({"service.name": "svc"})


class SequentialIds(IdGenerator):
    def __init__(self) -> None:
        self.n = 0

    def generate_span_id(self) -> int:
        self.n += 1
        return self.n

    def generate_trace_id(self) -> int:
        return 0xABC


def make_provider(*exporters: object) -> TracerProvider:
    provider = TracerProvider(resource=RESOURCE, id_generator=SequentialIds(), shutdown_on_exit=False)
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    return provider


def record_trace(provider: TracerProvider) -> None:
    """A root span with an LLM child (retry event, usage, cost) and a failed child."""
    tracer = provider.get_tracer("test-scope", "1.0")
    root = tracer.start_span("demo", start_time=T0)
    ctx = __import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(root)
    chat = tracer.start_span(
        "chat gpt-4o-mini",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 10 * MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cost": 0.00012,
            "rlm.request.attempts": 2,
            "gen_ai.response.finish_reasons": ("stop",),
        },
    )
    chat.add_event(
        "rlm.retry",
        {
            "rlm.retry.attempt": 1,
            "rlm.retry.max_retries": 2,
            "rlm.retry.delay_s": 0.5,
            "http.response.status_code": 429,
            "error.type": "RateLimitError",
        },
        timestamp=T0 + 20 * MS,
    )
    chat.end(end_time=T0 + 60 * MS)
    failed = tracer.start_span(
        "embeddings text-embedding-3-small",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 70 * MS,
        attributes={
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "error.type": "APIConnectionError",
        },
    )
    failed.set_status(Status(StatusCode.ERROR, "Connection error."))
    failed.end(end_time=T0 + 90 * MS)
    root.end(end_time=T0 + 100 * MS)


def test_span_line_is_otlp_json(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    exporter = JSONLSpanExporter(path)
    provider = make_provider(exporter)
    record_trace(provider)
    provider.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == [
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
        "demo",
    ]
    assert lines[0] == {
        "traceId": "00000000000000000000000000000abc",
        "spanId": "0000000000000002",
        "parentSpanId": "0000000000000001",
        "flags": 1,
        "name": "chat gpt-4o-mini",
        "kind": 3,  # SPAN_KIND_CLIENT
        "startTimeUnixNano": str(T0 + 10 * MS),
        "endTimeUnixNano": str(T0 + 60 * MS),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "30"}},
            {"key": "gen_ai.usage.cost", "value": {"doubleValue": 0.00012}},
            {"key": "rlm.request.attempts", "value": {"intValue": "2"}},
            {
                "key": "gen_ai.response.finish_reasons",
                "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}},
            },
        ],
        "events": [
            {
                "timeUnixNano": str(T0 + 20 * MS),
                "name": "rlm.retry",
                "attributes": [
                    {"key": "rlm.retry.attempt", "value": {"intValue": "1"}},
                    {"key": "rlm.retry.max_retries", "value": {"intValue": "2"}},
                    {"key": "rlm.retry.delay_s", "value": {"doubleValue": 0.5}},
                    {"key": "http.response.status_code", "value": {"intValue": "429"}},
                    {"key": "error.type", "value": {"stringValue": "RateLimitError"}},
                ],
            }
        ],
        "links": [],
        "status": {"code": 0},
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scope": {"name": "test-scope", "version": "1.0"},
    }
    assert lines[1]["status"] == {"code": 2, "message": "Connection error."}
    assert "parentSpanId" not in lines[2] and lines[2]["kind"] == 1  # root, SPAN_KIND_INTERNAL


def test_read_back_gives_equal_readable_spans_and_replays(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    memory = InMemorySpanExporter()
    provider = make_provider(JSONLSpanExporter(path), memory)
    record_trace(provider)
    provider.shutdown()
    original = memory.get_finished_spans()
    restored = read_spans_jsonl(path)
    assert [json.loads(s.to_json()) for s in restored] == [json.loads(s.to_json()) for s in original]

    # A saved trace replays through any exporter, e.g. the callbacks' exporter.
    from rlm_toolkit.callbacks import BaseCallback, CallbackSpanExporter

    seen: list[tuple[str, object]] = []

    class Recorder(BaseCallback):
        def on_llm_end(self, response: object, **kwargs: object) -> None:
            seen.append(("end", kwargs.get("model")))

        def on_retry(self, attempt: int, max_attempts: int, error: object, **kwargs: object) -> None:
            seen.append(("retry", attempt))

        def on_error(self, error: BaseException, **kwargs: object) -> None:
            seen.append(("error", kwargs.get("model")))

    CallbackSpanExporter([Recorder()]).export(restored)
    assert seen == [("retry", 1), ("end", "gpt-4o-mini"), ("error", "text-embedding-3-small")]


def test_reader_skips_logs_and_metrics_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    provider = make_provider(JSONLSpanExporter(path))
    record_trace(provider)
    provider.shutdown()
    with path.open("a") as file:
        file.write(json.dumps({"timeUnixNano": "1", "spanId": "0000000000000002", "body": {}}) + "\n")
        file.write(json.dumps({"name": "gen_ai.client.token.usage", "histogram": {}}) + "\n")
        file.write('{"traceId": "00')  # the writer died mid-line
    assert len(read_spans_jsonl(path)) == 3
    path.write_text('{"broken\n{}\n')
    with pytest.raises(ValueError, match=r"mixed.jsonl:1: not a JSON object"):
        read_spans_jsonl(path)


def test_log_and_metric_lines(tmp_path: Path) -> None:
    path = tmp_path / "all.jsonl"
    logger_provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(JSONLLogExporter(path)))
    logger_provider.get_logger("ev").emit(
        LogRecord(
            timestamp=T0,
            observed_timestamp=T0 + 1,
            severity_number=SeverityNumber.INFO,
            event_name="rlm.retry",
            attributes={"rlm.retry.attempt": 1},
        )
    )
    reader = PeriodicExportingMetricReader(JSONLMetricExporter(path), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader], shutdown_on_exit=False)
    meter = meter_provider.get_meter("m")
    meter.create_histogram("gen_ai.client.token.usage", unit="{token}").record(
        12, {"gen_ai.token.type": "input"}
    )
    meter.create_counter("rlm.client.retries").add(2)
    logger_provider.shutdown()
    meter_provider.shutdown()

    log, *metrics = (json.loads(line) for line in path.read_text().splitlines())
    assert log == {
        "timeUnixNano": str(T0),
        "observedTimeUnixNano": str(T0 + 1),
        "severityNumber": 9,
        "eventName": "rlm.retry",
        "attributes": [{"key": "rlm.retry.attempt", "value": {"intValue": "1"}}],
        "flags": 0,
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scope": {"name": "ev"},
    }
    by_name = {m["name"]: m for m in metrics}
    histogram = by_name["gen_ai.client.token.usage"]
    assert histogram["unit"] == "{token}"
    (point,) = histogram["histogram"]["dataPoints"]
    assert (point["count"], point["sum"], point["min"], point["max"]) == ("1", 12, 12, 12)
    assert point["attributes"] == [{"key": "gen_ai.token.type", "value": {"stringValue": "input"}}]
    assert histogram["histogram"]["aggregationTemporality"] == 2  # cumulative
    counter = by_name["rlm.client.retries"]["sum"]
    assert (counter["dataPoints"][0]["asInt"], counter["isMonotonic"]) == ("2", True)


def test_concurrent_exporters_on_one_file_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    provider = make_provider(JSONLSpanExporter(path), JSONLSpanExporter(path))  # two exporters, one file
    tracer = provider.get_tracer("t")

    def work() -> None:
        for i in range(100):
            with tracer.start_as_current_span(f"s{i}", attributes={"payload": "x" * 500}):
                pass

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()
    lines = path.read_text().splitlines()
    assert len(lines) == 6 * 100 * 2
    assert all(json.loads(line)["attributes"][0]["value"]["stringValue"] == "x" * 500 for line in lines)


def test_tree_shows_model_tokens_cost_retries_and_errors() -> None:
    out = io.StringIO()
    provider = make_provider(ConsoleTreeExporter(out, width=160))
    record_trace(provider)
    assert out.getvalue() == ""  # rendered at flush/shutdown, not per span
    provider.shutdown()
    lines = out.getvalue().splitlines()
    assert lines[0] == "── rlm-toolkit telemetry ──"
    assert lines[1] == "trace 000000000000… svc  3 spans  100 ms"
    assert lines[2].startswith("└── demo") and lines[2].endswith("━" * 24 + "  100 ms")
    assert lines[3].startswith("    ├── chat gpt-4o-mini ")
    assert lines[3].endswith("50 ms  12→30 tok  $0.000120  2 attempts")
    assert lines[4] == "    │   └── ↻ retry 1/2 in 0.50 s (429 RateLimitError)"
    assert lines[5].startswith("    └── embeddings text-embedding-3-small ")
    assert lines[5].endswith("20 ms  ✗ APIConnectionError: Connection error.")
    assert lines[6] == "Σ 2 LLM calls · 12 in / 30 out tokens · $0.000120 · 1 retry · 1 error"
    # Bars are laid out on the trace's time axis: the chat call starts 10% in, lasts 50%.
    bar = lines[3].split("gpt-4o-mini")[1].split()[0]
    assert bar == "··" + "━" * 12 + "·" * 10


def test_tree_colours_errors_red_when_colour_is_on() -> None:
    out = io.StringIO()
    provider = make_provider(ConsoleTreeExporter(out, width=160, color=True))
    record_trace(provider)
    provider.shutdown()
    text = out.getvalue()
    assert "\x1b[1;31membeddings text-embedding-3-small" in text  # bold red span name
    assert "\x1b[1;31m  ✗ APIConnectionError: Connection error.\x1b[0m" in text


def test_tree_per_trace_and_bounded() -> None:
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out, per_trace=True, width=120, max_spans=2)
    provider = make_provider(exporter)
    record_trace(provider)  # 3 spans, room for 2: the root still closes the trace
    assert "svc  2 spans  80 ms" in out.getvalue()
    assert "Σ 2 LLM calls · 12 in / 30 out tokens" in out.getvalue()
    assert "demo" not in out.getvalue()  # the third span (the root) was over the limit
    out.truncate(0)
    exporter.force_flush()
    assert "1 spans not shown (limit reached)" in out.getvalue()


def record_rlm_run(provider: TracerProvider, *, fail: bool = False) -> None:
    """An RLM run span carrying its children's usage totals, over a chat and an embeddings call."""
    from opentelemetry.trace import set_span_in_context

    tracer = provider.get_tracer("rlm")
    run = tracer.start_span(
        "invoke_agent rlm",
        start_time=T0,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "rlm",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 14,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cost": 0.00012,
        },
    )
    ctx = set_span_in_context(run)
    chat = tracer.start_span(
        "chat gpt-4o-mini",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 10 * MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cost": 0.00012,
        },
    )
    if fail:
        chat.set_status(Status(StatusCode.ERROR, "boom"))
        run.set_status(Status(StatusCode.ERROR, "boom"))
    chat.end(end_time=T0 + 50 * MS)
    embeddings = tracer.start_span(
        "embeddings text-embedding-3-small",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 60 * MS,
        attributes={
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 2,
            "gen_ai.usage.cost": 0.00000004,
        },
    )
    embeddings.end(end_time=T0 + 70 * MS)
    run.end(end_time=T0 + 100 * MS)


def test_tree_summary_counts_llm_calls_not_the_run_span_that_totals_them() -> None:
    exporter = ConsoleTreeExporter(width=160)
    memory = InMemorySpanExporter()
    provider = make_provider(memory)
    record_rlm_run(provider)
    lines = exporter.render(memory.get_finished_spans()).splitlines()
    assert lines[0] == "── rlm-toolkit telemetry ──"
    assert lines[1] == "trace 000000000000… svc  3 spans  100 ms"
    # The run row shows its own totals (model in its name is not repeated) ...
    assert lines[2].startswith("└── invoke_agent rlm ")
    assert lines[2].endswith("  100 ms  gpt-4o-mini  14→30 tok  $0.000120")
    assert lines[3].startswith("    ├── chat gpt-4o-mini ") and lines[3].endswith(
        "40 ms  12→30 tok  $0.000120"
    )
    # ... embeddings show input tokens only, and a sub-micro-dollar cost is not printed as $0.000000.
    assert lines[4].startswith("    └── embeddings text-embedding-3-small ")
    assert lines[4].endswith("10 ms  2 tok in  <$0.000001")
    # ... and the summary counts the two LLM calls once: 12+2 in, 30 out, not doubled by the run.
    assert lines[5] == "Σ 2 LLM calls · 14 in / 30 out tokens · $0.000120"
    assert len(lines) == 6


def test_tree_summary_counts_a_failure_once_and_wrapped_llm_spans_once() -> None:
    memory = InMemorySpanExporter()
    provider = make_provider(memory)
    record_rlm_run(provider, fail=True)  # the run fails because its chat call failed: one error
    tracer = provider.get_tracer("framework")
    inner = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5}
    with (
        tracer.start_as_current_span("chat wrapper", attributes={"gen_ai.operation.name": "chat"}),
        tracer.start_as_current_span("chat gpt-4o-mini", attributes=inner),
    ):
        pass
    text = ConsoleTreeExporter(width=160).render(memory.get_finished_spans())
    assert text.splitlines()[-1] == "Σ 3 LLM calls · 19 in / 30 out tokens · $0.000120 · 1 error"


def test_log_record_with_only_an_observed_timestamp(tmp_path: Path) -> None:
    """The instrumentation's rlm.retry records carry observed_timestamp only: the JSONL line says
    "unknown" the OTLP way (timeUnixNano 0, what an OTLP exporter sends too), and the SDK's console
    exporter that rlm-instrument uses prints it as null."""
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    path = tmp_path / "logs.jsonl"
    console = io.StringIO()
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(JSONLLogExporter(path)))
    provider.add_log_record_processor(SimpleLogRecordProcessor(ConsoleLogRecordExporter(out=console)))
    provider.get_logger("ev").emit(
        LogRecord(observed_timestamp=T0 + 5, event_name="rlm.retry", attributes={"rlm.retry.attempt": 1})
    )
    provider.shutdown()
    (line,) = path.read_text().splitlines()
    assert json.loads(line) == {
        "timeUnixNano": "0",
        "observedTimeUnixNano": str(T0 + 5),
        "eventName": "rlm.retry",
        "attributes": [{"key": "rlm.retry.attempt", "value": {"intValue": "1"}}],
        "flags": 0,
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scope": {"name": "ev"},
    }
    printed = json.loads(console.getvalue())
    assert (printed["timestamp"], printed["observed_timestamp"], printed["event_name"]) == (
        None,
        "2023-11-14T22:13:20.000000Z",
        "rlm.retry",
    )


def test_tree_at_exit_has_a_budget_and_exact_totals() -> None:
    """10k traces: the first and last spans are printed with a line saying what was left out;
    the Σ line is exact over all of them; memory holds only the budget (and open spans)."""
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out, width=160, max_spans=20)
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("load")
    usage = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2}
    for i in range(10_000):
        with tracer.start_as_current_span(f"call-{i}", attributes=usage):
            pass
    # A run wrapping a failed call: one call, one error, over the whole run as in a short one.
    record_rlm_run(provider, fail=True)
    kept = len(exporter._head) + len(exporter._tail)
    assert kept == 20 and not exporter._totals._llm_below and not exporter._totals._error_below
    provider.shutdown()
    lines = out.getvalue().splitlines()
    assert len(lines) < 60
    assert "call-0 " in out.getvalue() and "call-9 " in out.getvalue()  # the start of the run
    assert "call-9999 " in out.getvalue() and "invoke_agent rlm" in out.getvalue()  # and its end
    assert "call-10 " not in out.getvalue()
    assert "⋯ 9983 spans (9983 whole traces) not shown: the first 10 and the last 10 of 10003 are ⋯" in lines
    expected = ConsoleTreeExporter(width=160).render(_rlm_run_spans(fail=True)).splitlines()[-1]
    assert expected == "Σ 2 LLM calls · 14 in / 30 out tokens · $0.000120 · 1 error"
    assert lines[-1] == (
        "Σ 10002 LLM calls · 30014 in / 20030 out tokens · $0.000120 · 1 error"
        " · 10003 spans in 10001 traces, 9983 not shown"
    )


def _rlm_run_spans(*, fail: bool) -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    record_rlm_run(make_provider(memory), fail=fail)
    return memory.get_finished_spans()


def test_tree_at_exit_prints_a_short_run_whole() -> None:
    out = io.StringIO()
    provider = make_provider(ConsoleTreeExporter(out, width=160))  # the default budget
    for _ in range(10):
        record_trace(provider)
    provider.shutdown()
    assert "not shown" not in out.getvalue()
    assert out.getvalue().count("svc  30 spans") == 1  # all ten traces (one id) in one tree
