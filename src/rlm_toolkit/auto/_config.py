"""Telemetry settings resolved from the standard ``OTEL_*`` variables (and ours).

The CLI turns its flags into environment variables, then resolves them here to reject bad
input before anything starts; the bootstrap in the instrumented process resolves the very same
environment again. One resolver, so the two can never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_SDK_DISABLED,
)

from rlm_toolkit import environment_variables as ev

EXPORTERS = ("otlp", "console", "jsonl", "none")
PROTOCOLS = ("grpc", "http/protobuf")
CAPTURE_VALUES = ("true", "false", "span_only", "event_only", "span_and_event", "no_content")
SIGNALS = ("traces", "metrics", "logs")
DEFAULT_PROTOCOL = "http/protobuf"  # the OTLP exporter spec's default
DEFAULT_JSONL_PATH = "rlm-telemetry.jsonl"
DEFAULT_SHUTDOWN_TIMEOUT = 5.0

_EXPORTER_VARS = {
    "traces": OTEL_TRACES_EXPORTER,
    "metrics": OTEL_METRICS_EXPORTER,
    "logs": OTEL_LOGS_EXPORTER,
}


class ConfigError(ValueError):
    """Bad user input; the message is one line naming the problem and the fix."""


def sdk_disabled(env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED=true`` (case-insensitive, as the SDK reads it): no telemetry at all."""
    return env.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def signal_var(signal: str, suffix: str) -> str:
    """``OTEL_EXPORTER_OTLP_{SIGNAL}_{suffix}``, e.g. ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``."""
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"


def parse_exporters(value: str, source: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    for name in names:
        if name not in EXPORTERS:
            raise ConfigError(f"unknown exporter {name!r} in {source} (choose from {', '.join(EXPORTERS)})")
    if not names:
        raise ConfigError(f"empty exporter list in {source} (choose from {', '.join(EXPORTERS)})")
    return tuple(n for n in names if n != "none") if len(names) > 1 else names


def check_protocol(value: str, source: str) -> str:
    protocol = value.strip().lower()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {value!r} in {source} (choose from {', '.join(PROTOCOLS)})")
    return protocol


def check_endpoint(value: str, source: str) -> str:
    problem = None
    try:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https"):
            problem = "it needs an http:// or https:// scheme"
        elif not parts.hostname:
            problem = "it has no host"
        else:
            parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problem = "its port is not a number in 0-65535"
    if problem:
        raise ConfigError(
            f"malformed endpoint {value!r} in {source}: {problem} (expected a URL like http://127.0.0.1:4317)"
        )
    return value.strip()


def check_headers(value: str, source: str) -> str:
    for item in value.split(","):
        if item.strip() and "=" not in item:
            # Never echo the value: headers usually carry credentials.
            raise ConfigError(f"malformed headers in {source}: expected key=value pairs separated by commas")
    return value


def check_capture(value: str, source: str) -> str:
    if value.strip().lower() not in CAPTURE_VALUES:
        raise ConfigError(
            f"unknown content capture {value!r} in {source} (choose from {', '.join(CAPTURE_VALUES)})"
        )
    return value.strip().lower()


def parse_callback_specs(value: str, source: str) -> tuple[str, ...]:
    specs = tuple(part.strip() for part in value.split(",") if part.strip())
    for spec in specs:
        module, sep, name = spec.partition(":")
        if not sep or not module or not name:
            raise ConfigError(
                f"bad callback {spec!r} in {source} (expected module:Class, e.g. mycallbacks:Printer)"
            )
    return specs


@dataclass(frozen=True)
class SignalSettings:
    exporters: tuple[str, ...]
    protocol: str
    #: Endpoint as configured for this signal (per-signal variable, else the generic one).
    endpoint: str | None
    #: True when the endpoint came from the per-signal variable (used as is, no /v1/... suffix).
    endpoint_is_signal_specific: bool


@dataclass(frozen=True)
class Settings:
    traces: SignalSettings
    metrics: SignalSettings
    logs: SignalSettings
    jsonl_path: str | None
    callbacks: tuple[str, ...]
    capture_content: str | None
    propagate: bool
    shutdown_timeout: float

    def signal(self, name: str) -> SignalSettings:
        value: SignalSettings = getattr(self, name)
        return value


def _signal(env: Mapping[str, str], signal: str, jsonl_path: str | None) -> SignalSettings:
    specific = env.get(signal_var(signal, "ENDPOINT"))
    generic = env.get(OTEL_EXPORTER_OTLP_ENDPOINT)
    endpoint = specific or generic
    if specific:
        check_endpoint(specific, signal_var(signal, "ENDPOINT"))
    elif generic:
        check_endpoint(generic, OTEL_EXPORTER_OTLP_ENDPOINT)
    for var in (OTEL_EXPORTER_OTLP_HEADERS, signal_var(signal, "HEADERS")):
        if env.get(var):
            check_headers(env[var], var)
    var = _EXPORTER_VARS[signal]
    if env.get(var):
        exporters = parse_exporters(env[var], var)
    elif endpoint:
        exporters = ("otlp",)
    else:
        # The embedded default: spans as a tree in the terminal; metrics and events (which are
        # also span events in the tree) stay in process unless asked for.
        exporters = ("console",) if signal == "traces" else ("none",)
    if jsonl_path and "jsonl" not in exporters:
        exporters = (*(e for e in exporters if e != "none"), "jsonl")
    protocol_var = signal_var(signal, "PROTOCOL")
    if env.get(protocol_var):
        protocol = check_protocol(env[protocol_var], protocol_var)
    elif env.get(OTEL_EXPORTER_OTLP_PROTOCOL):
        protocol = check_protocol(env[OTEL_EXPORTER_OTLP_PROTOCOL], OTEL_EXPORTER_OTLP_PROTOCOL)
    else:
        protocol = DEFAULT_PROTOCOL
    return SignalSettings(exporters, protocol, endpoint, bool(specific))


def resolve(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default ``os.environ``); raises :class:`ConfigError` on bad input."""
    env = os.environ if env is None else env
    jsonl_path = env.get(ev.RLM_INSTRUMENT_JSONL) or None
    wants_jsonl = any("jsonl" in env.get(var, "").lower() for var in _EXPORTER_VARS.values())
    if wants_jsonl and not jsonl_path:
        jsonl_path = DEFAULT_JSONL_PATH
    capture = env.get(ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    timeout_text = env.get(ev.RLM_INSTRUMENT_SHUTDOWN_TIMEOUT, "")
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_SHUTDOWN_TIMEOUT
    except ValueError:
        raise ConfigError(
            f"bad {ev.RLM_INSTRUMENT_SHUTDOWN_TIMEOUT} {timeout_text!r} (expected seconds, e.g. 5)"
        ) from None
    return Settings(
        traces=_signal(env, "traces", jsonl_path),
        metrics=_signal(env, "metrics", jsonl_path),
        logs=_signal(env, "logs", jsonl_path),
        jsonl_path=jsonl_path,
        callbacks=parse_callback_specs(env.get(ev.RLM_INSTRUMENT_CALLBACKS, ""), ev.RLM_INSTRUMENT_CALLBACKS),
        capture_content=check_capture(capture, ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
        if capture
        else None,
        propagate=env.get(ev.RLM_INSTRUMENT_PROPAGATE, "") == "1",
        shutdown_timeout=max(timeout, 0.0),
    )
