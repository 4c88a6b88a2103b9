"""Build SDK tracer/meter/logger providers from :class:`Settings`; shut them down in bounded time."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from rlm_toolkit._safety import contain
from rlm_toolkit.auto._config import Settings


def _otlp_span_exporter(protocol: str) -> SpanExporter:
    # Constructed without arguments: the exporters read endpoint, headers, timeout,
    # compression and TLS settings from the standard OTEL_EXPORTER_OTLP_* variables.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http()


def _otlp_metric_exporter(protocol: str) -> MetricExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http()


def _otlp_log_exporter(protocol: str) -> LogRecordExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Http

    return Http()


@dataclass
class Telemetry:
    """The providers of one instrumented process and a bounded, idempotent shutdown."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def shutdown(self, timeout: float) -> bool:
        """Flush and shut down all three providers in parallel; give up after ``timeout`` s.

        Returns False when something was still exporting at the deadline (e.g. the collector
        is down and the exporter is backing off); its daemon thread is abandoned so the
        process can exit.
        """
        with self._lock:
            if self._done:
                return True
            self._done = True
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("tracer provider shutdown", self.tracer_provider.shutdown),
            ("logger provider shutdown", self.logger_provider.shutdown),
            ("meter provider shutdown", lambda: self.meter_provider.shutdown(timeout_millis=timeout * 1000)),
        ]
        threads = [
            threading.Thread(target=_run_contained, args=step, name=f"rlm-{step[0]}", daemon=True)
            for step in steps
        ]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in threads)


def _run_contained(what: str, fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as exc:
        contain(what, exc)


def build_telemetry(settings: Settings, resource: Resource | None = None) -> Telemetry:
    """Providers with the exporters ``settings`` name (no global state is touched)."""
    resource = resource or Resource.create()
    jsonl = settings.jsonl_path

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    # Local exporters first: at shutdown the tree is printed before a slow OTLP flush starts.
    for name in sorted(settings.traces.exporters, key=lambda n: n == "otlp"):
        if name == "console":
            from rlm_toolkit.exporters import ConsoleTreeExporter

            tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleTreeExporter(sys.stderr)))
        elif name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLSpanExporter

            tracer_provider.add_span_processor(BatchSpanProcessor(JSONLSpanExporter(jsonl)))
        elif name == "otlp":
            tracer_provider.add_span_processor(
                BatchSpanProcessor(_otlp_span_exporter(settings.traces.protocol))
            )

    readers: list[MetricReader] = []
    for name in settings.metrics.exporters:
        if name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLMetricExporter

            readers.append(PeriodicExportingMetricReader(JSONLMetricExporter(jsonl)))
        elif name == "otlp":
            readers.append(PeriodicExportingMetricReader(_otlp_metric_exporter(settings.metrics.protocol)))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for name in settings.logs.exporters:
        if name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLLogExporter

            logger_provider.add_log_record_processor(BatchLogRecordProcessor(JSONLLogExporter(jsonl)))
        elif name == "otlp":
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(_otlp_log_exporter(settings.logs.protocol))
            )
    return Telemetry(tracer_provider, meter_provider, logger_provider)
