"""OTLP exporters for rlm-instrument, built so that an unreachable collector costs the app
(almost) nothing: a dropped batch is one line on stderr, not a minute of retries at exit.

* Each OTLP exporter is wrapped in a ``_Gated*`` exporter sharing a :class:`Gate` per collector
  address (host, port).
* At shutdown, :func:`drop_unreachable` opens one TCP connection to each address (in parallel,
  at most ``PROBE_TIMEOUT`` s) and sends the first bytes of what the exporter speaks there (an
  HTTP/1.1 request, the HTTP/2 preface for plaintext gRPC, a TLS ClientHello for https), waiting
  for any answer: a collector that accepts connections but never answers (a wedged process, a
  firewall that black-holes after the handshake) would otherwise hold the exit for the whole
  shutdown cap and lose the telemetry silently. An address that refuses or does not answer is closed: its
  exporters are shut down (which interrupts a retry back-off in progress) and further batches
  are dropped at once instead of being retried for the exporter's timeout (10 s by default).
  A live collector, however slow, gets the normal flush within the shutdown budget.
* The OTel exporters' retry chatter ("Transient error ... retrying in 0.83s", one per attempt
  and signal) is filtered from their loggers; each gate prints at most one line instead,
  e.g. ``rlm-toolkit: OTLP endpoint http://127.0.0.1:4318 unreachable; telemetry dropped``.
  Errors that are not retries (e.g. HTTP 401) still reach the user through OTel's logging.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from rlm_toolkit._safety import contain
from rlm_toolkit.auto._config import SignalSettings, redact_url

#: Longest wait for the connect probe at shutdown (also capped by the shutdown budget).
PROBE_TIMEOUT = 1.0
#: What is left of the shutdown budget once every OTLP address was found unreachable: enough for
#: local exporters (console, JSONL) to finish, not for a stuck request to a black hole.
AFTER_DROP_BUDGET = 1.0
PREFIX = "rlm-toolkit: "
_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
# The OTel exporters' loggers (each logs its own retries; filters do not propagate to children).
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)
_RETRY_STATUS_NAMES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})


class _QuietRetries(logging.Filter):
    """Drops the exporters' per-attempt retry warnings and the "gave up retrying" error that
    ends them (a gate reports that once); lets every other record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith(("Transient error", "Shutdown in progress, aborting retry")):
            return False
        if "due to timeout, max retries or shutdown" in msg:  # HTTP: retries exhausted
            return False
        if msg.startswith("Failed to export") and isinstance(record.args, tuple):  # gRPC: the same
            return not any(getattr(arg, "name", None) in _RETRY_STATUS_NAMES for arg in record.args)
        return True


_QUIET = _QuietRetries()


def quiet_exporter_retries() -> None:
    """Install the retry filter on the OTel OTLP exporter loggers (idempotent)."""
    for name in _EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


class Gate:
    """One collector address: open until found unreachable. Reports each rejected signal once
    (a traces-only backend such as Arize Phoenix takes spans and rejects metrics and logs: the
    user must hear about both), and unreachability once for all signals."""

    def __init__(
        self, url: str, host: str, port: int, protocol: str = "http/protobuf", tls: bool = False
    ) -> None:
        self.url = redact_url(url)
        self.host = host
        self.port = port
        self.protocol = protocol
        self.tls = tls
        self.open = True
        self._reported = False
        self._signals_reported: set[str] = set()
        self._lock = threading.Lock()
        self._exporters: list[_Gated] = []

    def add(self, exporter: _Gated) -> None:
        self._exporters.append(exporter)

    def report(self, message: str, signal: str | None = None) -> None:
        """Print ``message`` once per ``signal`` (None: once for the gate), never after the
        gate was reported unreachable."""
        with self._lock:
            if self._reported:
                return
            if signal is None:
                self._reported = True
            elif signal in self._signals_reported:
                return
            else:
                self._signals_reported.add(signal)
        sys.stderr.write(f"{PREFIX}{message}\n")

    def close(self) -> bool:
        """Drop everything from now on and stop the exporters; True if not reported before."""
        with self._lock:
            first = not self._reported
            self._reported = True
            self.open = False
        for exporter in self._exporters:
            exporter.stop_inner()
        return first


class _Gated:
    """What the three wrappers share: the gate, the inner exporter, a once-only inner shutdown."""

    def __init__(self, inner: Any, gate: Gate, signal: str) -> None:
        self._inner = inner
        self._gate = gate
        self._signal = signal
        self._stopped = False
        self._stop_lock = threading.Lock()
        gate.add(self)

    def stop_inner(self, **kwargs: Any) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            self._inner.shutdown(**kwargs)
        except Exception as exc:
            contain(f"OTLP {self._signal} exporter shutdown", exc)

    def _after(self, ok: bool) -> None:
        if not ok and self._gate.open:
            self._gate.report(
                f"OTLP endpoint {self._gate.url} did not accept {self._signal}; they were dropped",
                self._signal,
            )


class GatedSpanExporter(_Gated, SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._gate.open:
            return SpanExportResult.FAILURE
        result: SpanExportResult = self._inner.export(spans)
        self._after(result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self.stop_inner()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis)) if self._gate.open else True


class GatedLogExporter(_Gated, LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if not self._gate.open:
            return LogRecordExportResult.FAILURE
        result: LogRecordExportResult = self._inner.export(batch)
        self._after(result is LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self.stop_inner()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis)) if self._gate.open else True


class GatedMetricExporter(_Gated, MetricExporter):
    def __init__(self, inner: MetricExporter, gate: Gate, signal: str) -> None:
        _Gated.__init__(self, inner, gate, signal)
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if not self._gate.open:
            return MetricExportResult.FAILURE
        result: MetricExportResult = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self._after(result is MetricExportResult.SUCCESS)
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.stop_inner(timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis)) if self._gate.open else True


class Gates:
    """The gates of one :class:`~rlm_toolkit.auto._providers.Telemetry`, one per address."""

    def __init__(self) -> None:
        self.all: list[Gate] = []

    def for_signal(self, settings: SignalSettings) -> Gate:
        url = settings.endpoint or _DEFAULT_ENDPOINTS.get(
            settings.protocol, _DEFAULT_ENDPOINTS["http/protobuf"]
        )
        parts = urlsplit(url)
        https = parts.scheme == "https" or settings.protocol == "grpc"  # gRPC's default port is 443
        host, port = parts.hostname or "localhost", parts.port or (443 if https else 80)
        for gate in self.all:
            if (gate.host, gate.port) == (host, port):
                return gate
        tls = parts.scheme == "https" or (settings.protocol == "grpc" and parts.scheme != "http")
        gate = Gate(url, host, port, settings.protocol, tls)
        self.all.append(gate)
        return gate


def _behind_proxy(host: str) -> bool:
    import urllib.request  # only at shutdown, only with OTLP configured

    proxies = urllib.request.getproxies()
    if not any(proxies.get(scheme) for scheme in ("http", "https", "grpc")):
        return False
    return not urllib.request.proxy_bypass(host)


#: The HTTP/2 connection preface and an empty SETTINGS frame: a gRPC server answers with its own
#: SETTINGS frame. (HTTP/1.1 servers answer it with an error, which is an answer too.)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _answers(sock: socket.socket, gate: Gate, deadline: float) -> bool:
    """Whether the peer says anything (bytes, an orderly close, a reset) before ``deadline``."""
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        if gate.tls:
            import ssl  # only at shutdown, only for an https collector

            context = ssl.create_default_context()
            context.check_hostname = False  # any handshake reply is an answer; the exporter verifies
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname=gate.host, do_handshake_on_connect=True):
                return True
        if gate.protocol == "grpc":
            sock.sendall(_H2_PREFACE)
        else:
            sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {gate.host}\r\nConnection: close\r\n\r\n".encode())
        sock.recv(1)  # b"" (closed) is an answer too
        return True
    except TimeoutError:
        return False
    except OSError:  # reset, TLS alert, ...: someone is there and said no
        return True


#: The probe gives up this long before the caller stops waiting for it, so that a silent
#: collector is reported as such, not as a probe that did not finish.
_PROBE_MARGIN = 0.05


_UNREACHABLE = "unreachable"
_SILENT = "silent"
#: How each reason reads after "OTLP endpoint(s) <urls>", singular and plural.
_REASONS = {
    _UNREACHABLE: ("unreachable", "unreachable"),
    _SILENT: ("accepts connections but does not answer", "accept connections but do not answer"),
}


def _probe(gate: Gate, deadline: float, results: dict[Gate, str | None]) -> None:
    """``results[gate]``: None when the collector answered, else why it is considered down."""
    deadline -= _PROBE_MARGIN
    timeout = max(deadline - time.monotonic(), 0.001)
    try:
        if _behind_proxy(gate.host):
            results[gate] = None  # reachable only through the proxy: no way to tell, so flush
            return
        with socket.create_connection((gate.host, gate.port), timeout=timeout) as sock:
            results[gate] = None if _answers(sock, gate, deadline) else _SILENT
    except OSError:
        results[gate] = _UNREACHABLE
    except Exception as exc:  # our bug: assume reachable, as before this probe existed
        results[gate] = None
        contain("OTLP endpoint probe", exc)


def drop_unreachable(gates: Sequence[Gate], timeout: float) -> list[Gate]:
    """Probe each open gate's address within ``timeout`` s; close (and report, one line per
    reason) the ones that refuse, do not connect in time, or connect but do not answer.
    Returns the gates closed."""
    gates = [gate for gate in gates if gate.open]
    if not gates or timeout <= 0:
        return []
    results: dict[Gate, str | None] = {}
    deadline = time.monotonic() + timeout
    threads = [
        threading.Thread(target=_probe, args=(gate, deadline, results), name="rlm-otlp-probe", daemon=True)
        for gate in gates
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    down = [gate for gate in gates if results.get(gate, _UNREACHABLE) is not None]
    by_reason: dict[str, list[str]] = {}
    for gate in down:
        if gate.close():
            by_reason.setdefault(results.get(gate) or _UNREACHABLE, []).append(gate.url)
    for reason, urls in by_reason.items():
        one, many = _REASONS[reason]
        noun, verb = ("endpoint", one) if len(urls) == 1 else ("endpoints", many)
        sys.stderr.write(f"{PREFIX}OTLP {noun} {', '.join(urls)} {verb}; telemetry dropped\n")
    return down


def otlp_span_exporter(settings: SignalSettings, gates: Gates) -> SpanExporter:
    # Constructed without arguments: the exporters read endpoint, headers, timeout,
    # compression and TLS settings from the standard OTEL_EXPORTER_OTLP_* variables.
    inner: SpanExporter
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        inner = Grpc()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        inner = Http()
    return GatedSpanExporter(inner, gates.for_signal(settings), "spans")


def otlp_metric_exporter(settings: SignalSettings, gates: Gates) -> MetricExporter:
    inner: MetricExporter
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        inner = Grpc()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

        inner = Http()
    return GatedMetricExporter(inner, gates.for_signal(settings), "metrics")


def otlp_log_exporter(settings: SignalSettings, gates: Gates) -> LogRecordExporter:
    inner: LogRecordExporter
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Grpc

        inner = Grpc()
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Http

        inner = Http()
    return GatedLogExporter(inner, gates.for_signal(settings), "log records")
