"""Build SDK tracer/meter/logger providers from :class:`Settings`; shut them down in bounded time."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from rlm_toolkit._safety import contain
from rlm_toolkit.auto._config import Settings
from rlm_toolkit.auto._otlp import (
    AFTER_DROP_BUDGET,
    PROBE_TIMEOUT,
    Gates,
    drop_unreachable,
    otlp_log_exporter,
    otlp_metric_exporter,
    otlp_span_exporter,
    quiet_exporter_retries,
)
from rlm_toolkit.exporters._clean import CleanLogExporter, CleanSpanExporter


class SerialStderr:
    """``sys.stderr`` (looked up per write, so redirection works) with whole writes serialised.

    The console exporters of the three signals may write from different threads (the tracer,
    meter and logger providers shut down in parallel); each of them writes a whole block in one
    ``write`` call, so a lock around ``write`` keeps blocks from interleaving.
    """

    _lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return sys.stderr.write(text)

    def flush(self) -> None:
        with self._lock:
            sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, ... as the real stream has them
        return getattr(sys.stderr, name)


@dataclass
class Telemetry:
    """The providers of one instrumented process and a bounded, idempotent shutdown."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    #: Shut the meter provider down before the others start (when its readers are all local,
    #: so this is quick): console metrics then print before the trace tree, which ends the output.
    metrics_first: bool = False
    #: The OTLP collector addresses, probed at shutdown (see ``_otlp``).
    gates: Gates = field(default_factory=Gates)
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def shutdown(self, timeout: float) -> bool:
        """Flush and shut down all three providers in parallel (the meter provider first when
        ``metrics_first``); give up after ``timeout`` s in all.

        First each OTLP collector address is probed (at most ``PROBE_TIMEOUT`` s): telemetry
        for one that is unreachable is dropped at once, with one line on stderr, instead of
        being retried until the deadline; when all are unreachable, the rest of the budget is
        cut to ``AFTER_DROP_BUDGET`` s (local exporters only).

        Returns False when something was still exporting at the deadline (e.g. a collector
        that accepts connections but does not answer); its daemon thread is abandoned so the
        process can exit.
        """
        with self._lock:
            if self._done:
                return True
            self._done = True
        deadline = time.monotonic() + timeout
        try:
            dropped = drop_unreachable(self.gates.all, min(PROBE_TIMEOUT, timeout))
            if self.gates.all and len(dropped) == len(self.gates.all):
                deadline = min(deadline, time.monotonic() + AFTER_DROP_BUDGET)
        except Exception as exc:
            contain("OTLP endpoint probe", exc)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("tracer provider shutdown", self.tracer_provider.shutdown),
            ("logger provider shutdown", self.logger_provider.shutdown),
            (
                "meter provider shutdown",
                lambda: self.meter_provider.shutdown(
                    timeout_millis=max(deadline - time.monotonic(), 0.0) * 1000
                ),
            ),
        ]
        threads = [
            threading.Thread(target=_run_contained, args=step, name=f"rlm-{step[0]}", daemon=True)
            for step in steps
        ]
        meter = threads[-1]
        if self.metrics_first:
            meter.start()
            meter.join(max(deadline - time.monotonic(), 0.0))
        for thread in threads:
            if thread is not meter or not self.metrics_first:
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
    """Providers with the exporters ``settings`` name (no global provider is set).

    With OTLP configured, the OTel OTLP exporters' per-attempt retry warnings are filtered from
    their loggers (process-wide): a collector problem is reported once by ``Telemetry``.
    """
    resource = resource or Resource.create()
    jsonl = settings.jsonl_path

    console = cast(IO[str], SerialStderr())
    gates = Gates()
    if any("otlp" in settings.signal(signal).exporters for signal in ("traces", "metrics", "logs")):
        quiet_exporter_retries()

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    # Local exporters first: at shutdown the tree is printed before a slow OTLP flush starts.
    for name in sorted(settings.traces.exporters, key=lambda n: n == "otlp"):
        if name == "console":
            from rlm_toolkit.exporters import ConsoleTreeExporter

            tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleTreeExporter(console)))
        elif name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLSpanExporter

            tracer_provider.add_span_processor(BatchSpanProcessor(JSONLSpanExporter(jsonl)))
        elif name == "otlp":
            exporter = CleanSpanExporter(otlp_span_exporter(settings.traces, gates))
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))

    readers: list[MetricReader] = []
    for name in settings.metrics.exporters:
        if name == "console":  # the SDK's JSON dump, at the export interval and at exit
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=console)))
        elif name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLMetricExporter

            readers.append(PeriodicExportingMetricReader(JSONLMetricExporter(jsonl)))
        elif name == "otlp":
            readers.append(PeriodicExportingMetricReader(otlp_metric_exporter(settings.metrics, gates)))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for name in settings.logs.exporters:
        if name == "console":  # the SDK's JSON per record, as each event happens
            logger_provider.add_log_record_processor(
                SimpleLogRecordProcessor(ConsoleLogRecordExporter(out=console))
            )
        elif name == "jsonl" and jsonl:
            from rlm_toolkit.exporters import JSONLLogExporter

            logger_provider.add_log_record_processor(BatchLogRecordProcessor(JSONLLogExporter(jsonl)))
        elif name == "otlp":
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(CleanLogExporter(otlp_log_exporter(settings.logs, gates)))
            )
    metrics_first = "console" in settings.metrics.exporters and "otlp" not in settings.metrics.exporters
    return Telemetry(
        tracer_provider, meter_provider, logger_provider, metrics_first=metrics_first, gates=gates
    )
