"""In-process: URL redaction, the shutdown-timeout rule, and the OTLP gate (probe, drop, one line)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from rlm_toolkit.auto import build_telemetry, resolve
from rlm_toolkit.auto._config import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    ConfigError,
    parse_shutdown_timeout,
    redact_text,
    redact_url,
)
from rlm_toolkit.auto._otlp import Gate, drop_unreachable

# -- redaction ---------------------------------------------------------------------------------
REDACTED_URLS = [
    ("http://127.0.0.1:4317", "http://127.0.0.1:4317"),
    ("https://api.honeycomb.io/v1/traces", "https://api.honeycomb.io/v1/traces"),
    ("http://u:SECRET@127.0.0.1:abc", "http://***@127.0.0.1:abc"),
    ("http://u:pa/ss@SECRET@host:1/x", "http://***@host:1/x"),  # everything up to the last @
    ("https://host/v1/traces?api_key=SECRET#frag", "https://host/v1/traces?***"),
    ("http://u:p?w@host/?k=SECRET", "http://***@host/?***"),  # '?' inside the password
    ("u:SECRET@127.0.0.1:4317", "***@127.0.0.1:4317"),  # no scheme
    ("  http://host:1  ", "http://host:1"),
]


@pytest.mark.parametrize(("url", "shown"), REDACTED_URLS)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_urls_in_free_text() -> None:
    text = (
        "Max retries exceeded: HTTPConnectionPool(url='http://bob:SECRET@h:1/v1/traces?token=SECRET2') "
        "and https://h2/x#SECRET3 but not plain words: a@b"
    )
    assert redact_text(text) == (
        "Max retries exceeded: HTTPConnectionPool(url='http://***@h:1/v1/traces?***') "
        "and https://h2/x?*** but not plain words: a@b"
    )


# -- RLM_INSTRUMENT_SHUTDOWN_TIMEOUT ---------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [("", DEFAULT_SHUTDOWN_TIMEOUT), ("0", 0.0), (" 2.5 ", 2.5)])
def test_shutdown_timeout_accepts_finite_non_negative_seconds(text: str, value: float) -> None:
    assert parse_shutdown_timeout(text) == value


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "-0.5", "five", "1e999"])
def test_shutdown_timeout_rejects_the_rest(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT .* \(expected seconds >= 0"):
        parse_shutdown_timeout(text)
    env = {"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": text}
    with pytest.raises(ConfigError):
        resolve(env)


def test_lenient_resolve_logs_at_debug_and_uses_the_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rlm_toolkit"):
        settings = resolve({"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": "nan"}, lenient_timeout=True)
    assert settings.shutdown_timeout == DEFAULT_SHUTDOWN_TIMEOUT
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.DEBUG,
            "rlm-instrument: bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT 'nan' (expected seconds >= 0, e.g. 5); using 5.0 s",
        )
    ]


# -- the gate ----------------------------------------------------------------------------------
@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture
def refused() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def answering() -> Iterator[int]:
    """A loopback HTTP server that answers every request (with 405/501: an answer all the same)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_probe_closes_only_unreachable_gates_and_reports_them_in_one_line(
    answering: int, refused: int, capsys: pytest.CaptureFixture[str]
) -> None:
    up = Gate(f"http://127.0.0.1:{answering}", "127.0.0.1", answering)
    down = Gate(f"http://k:SECRET@127.0.0.1:{refused}/v1/traces?x=1", "127.0.0.1", refused)
    also_down = Gate("http://127.0.0.1:1", "127.0.0.1", 1)
    assert drop_unreachable([up, down, also_down], 1.0) == [down, also_down]
    assert (up.open, down.open, also_down.open) == (True, False, False)
    assert capsys.readouterr().err == (
        f"rlm-toolkit: OTLP endpoints http://***@127.0.0.1:{refused}/v1/traces?***, http://127.0.0.1:1 "
        "unreachable; telemetry dropped\n"
    )
    # Closed gates are not probed or reported again; a gate reports at most once.
    assert drop_unreachable([up, down], 1.0) == []
    down.report("again")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_probe_tells_a_silent_collector_from_one_that_answers(
    protocol: str, answering: int, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """``listening`` completes TCP handshakes (the kernel does) but never reads or answers."""
    up = Gate(f"http://127.0.0.1:{answering}", "127.0.0.1", answering, protocol)
    silent = Gate(f"http://127.0.0.1:{listening}", "127.0.0.1", listening, protocol)
    assert drop_unreachable([up, silent], 1.0) == [silent]
    assert capsys.readouterr().err == (
        f"rlm-toolkit: OTLP endpoint http://127.0.0.1:{listening} accepts connections but does not "
        "answer; telemetry dropped\n"
    )


def _otlp_settings(port: int, protocol: str) -> object:
    return resolve(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
        }
    )


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_shutdown_with_the_collector_down_is_quick_and_quiet(
    protocol: str,
    refused: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The exporters are mid-retry (exports every 20 ms) when shutdown starts: without the gate
    the shutdown waits out their back-off (the 5 s budget here) and they log a warning per try."""
    from opentelemetry._logs import LogRecord

    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{refused}")  # the exporters read it
    telemetry = build_telemetry(_otlp_settings(refused, protocol))  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="opentelemetry.exporter"):
        with telemetry.tracer_provider.get_tracer("t").start_as_current_span("work"):
            telemetry.logger_provider.get_logger("t").emit(LogRecord(body="hello"))
            telemetry.meter_provider.get_meter("t").create_counter("c").add(1)
        time.sleep(0.3)  # the batch processors' first exports fail and start backing off
        started = time.monotonic()
        assert telemetry.shutdown(5.0) is True
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
    assert capsys.readouterr().err == (
        f"rlm-toolkit: OTLP endpoint http://127.0.0.1:{refused} unreachable; telemetry dropped\n"
    )
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []


def test_a_non_retry_export_error_is_still_logged_and_reported_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A collector that answers 401: OTel's own error stays visible (it is not retry chatter),
    and the gate adds one line (the first failure), not one per batch."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Deny(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Deny)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        settings = resolve(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_METRICS_EXPORTER": "none"}
        )
        telemetry = build_telemetry(settings)
        with caplog.at_level(logging.WARNING, logger="opentelemetry.exporter"):
            tracer = telemetry.tracer_provider.get_tracer("t")
            with tracer.start_as_current_span("one"):
                pass
            assert telemetry.tracer_provider.force_flush() is True
            with tracer.start_as_current_span("two"):
                pass
            assert telemetry.shutdown(5.0) is True
    finally:
        server.shutdown()
        server.server_close()
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to export spans batch code: 401, reason: Unauthorized"
    ] * 2
    assert capsys.readouterr().err == (
        f"rlm-toolkit: OTLP endpoint http://127.0.0.1:{port} did not accept spans; they were dropped\n"
    )
