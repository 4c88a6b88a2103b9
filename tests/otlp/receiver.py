"""A real OTLP receiver for tests: gRPC and HTTP/protobuf on 127.0.0.1, ephemeral ports.

Decoded ``Export*ServiceRequest`` messages are kept in order; helpers flatten them into
spans, metrics and log records with their resource. Usage::

    with OTLPReceiver() as rx:
        run_app(env={"OTEL_EXPORTER_OTLP_ENDPOINT": rx.grpc_endpoint, ...})
        spans = rx.wait_for_spans(3)
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value_of(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attrs(any_value.kvlist_value.values)
    return getattr(any_value, kind)


def attrs(items: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in items}


@dataclass
class Received:
    """One decoded request and how it arrived."""

    signal: str  # traces | metrics | logs
    transport: str  # grpc | http
    request: Any
    headers: dict[str, str] = field(default_factory=dict)


_REQUEST_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
_RESPONSE_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}


class OTLPReceiver:
    def __init__(self, reject: tuple[str, ...] = ()) -> None:
        #: Signals this receiver does not take, as a traces-only backend (Arize Phoenix): HTTP
        #: answers 405, gRPC has no such service registered (the server answers UNIMPLEMENTED).
        self.reject = frozenset(reject)
        self.received: list[Received] = []
        self._lock = threading.Condition()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self.grpc_port = 0
        self.http_port = 0
        #: Seconds each HTTP request is held before it is answered (a slow but live collector).
        self.http_delay = 0.0

    # -- endpoints -----------------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> OTLPReceiver:
        self._start_grpc()
        self._start_http()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
            self._lock.notify_all()

    def _start_grpc(self) -> None:
        receiver = self

        def servicer(signal: str, base: type) -> Any:
            def export(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
                headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                receiver._record(Received(signal, "grpc", request, headers))
                return _RESPONSE_TYPES[signal]()

            return type(f"{signal}Servicer", (base,), {"Export": export})()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if "traces" not in self.reject:
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
                servicer("traces", trace_service_pb2_grpc.TraceServiceServicer), server
            )
        if "metrics" not in self.reject:
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
                servicer("metrics", metrics_service_pb2_grpc.MetricsServiceServicer), server
            )
        if "logs" not in self.reject:
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
                servicer("logs", logs_service_pb2_grpc.LogsServiceServicer), server
            )
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server

    def _start_http(self) -> None:
        receiver = self
        paths = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                signal = paths.get(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if signal is None:
                    self.send_error(404)
                    return
                if signal in receiver.reject:
                    self.send_error(405)
                    return
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_error(415)
                    return
                time.sleep(receiver.http_delay)
                request = _REQUEST_TYPES[signal]()
                request.ParseFromString(body)
                receiver._record(
                    Received(signal, "http", request, {k.lower(): v for k, v in self.headers.items()})
                )
                payload = _RESPONSE_TYPES[signal]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    # -- reading -------------------------------------------------------------------------
    def requests(self, signal: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.signal == signal]

    def spans(self) -> list[dict[str, Any]]:
        """Every span received, flattened: name, ids (hex), kind, attributes, events, status, resource."""
        out = []
        for item in self.requests("traces"):
            for rs in item.request.resource_spans:
                resource = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        out.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "start": span.start_time_unix_nano,
                                "kind": span.kind,
                                "attributes": attrs(span.attributes),
                                "events": [(e.name, attrs(e.attributes)) for e in span.events],
                                "status_code": span.status.code,
                                "resource": resource,
                                "scope": ss.scope.name,
                                "transport": item.transport,
                            }
                        )
        return out

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> list of (resource, Metric proto) received."""
        out: dict[str, list[Any]] = {}
        for item in self.requests("metrics"):
            for rm in item.request.resource_metrics:
                resource = attrs(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        out.setdefault(metric.name, []).append((resource, metric))
        return out

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for item in self.requests("logs"):
            for rl in item.request.resource_logs:
                resource = attrs(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        out.append(
                            {
                                "event_name": record.event_name,
                                "body": value_of(record.body),
                                "attributes": attrs(record.attributes),
                                "trace_id": record.trace_id.hex(),
                                "span_id": record.span_id.hex(),
                                "resource": resource,
                            }
                        )
        return out

    def wait_until(self, predicate: Callable[[OTLPReceiver], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True
