"""Telemetry settings resolved from the standard ``OTEL_*`` variables (and ours).

The CLI turns its flags into environment variables, then resolves them here to reject bad
input before anything starts; the bootstrap in the instrumented process resolves the very same
environment again. One resolver, so the two can never disagree.
"""

from __future__ import annotations

import logging
import math
import os
import re
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

_logger = logging.getLogger(__name__)

# OTEL_EXPORTER_OTLP_HEADERS items as the SDK's liberal parser accepts them (the patterns of
# opentelemetry.util.re): anything else the SDK logs *with the header value* -- a credential.
_HEADER_ITEM = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*="
    r"[ \t]*[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)
_HEADER_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
# scheme://userinfo@ and ?query / #fragment inside free text (e.g. an exception message).
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#'\"]*@")
_QUERY_IN_TEXT = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]*)[?#][^\s'\"]*")

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


def redact_url(value: str) -> str:
    """``value`` safe to print: userinfo (``user:password@``) and the query string/fragment are
    replaced by ``***``. Works on malformed URLs too (everything up to the last ``@`` is userinfo)."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    else:
        scheme += sep
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        rest = rest[: cut + 1] + "***"
    return scheme + rest


def redact_text(text: str) -> str:
    """Free text (e.g. an exception message) with every URL's userinfo and query redacted."""
    return _QUERY_IN_TEXT.sub(r"\1?***", _USERINFO_IN_TEXT.sub(r"\1***@", text))


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
            f"malformed endpoint {redact_url(value)!r} in {source}: {problem} (expected a URL like http://127.0.0.1:4317)"
        )
    return value.strip()


def check_headers(value: str, source: str) -> str:
    for number, item in enumerate(_HEADER_SEPARATOR.split(value), 1):
        if item and not _HEADER_ITEM.fullmatch(item):
            # Never echo the item: headers usually carry credentials.
            raise ConfigError(
                f"malformed headers in {source}: expected key=value pairs separated by commas (item {number} "
                'is not: a key is a token, a value printable ASCII without , ; \\ or ")'
            )
    return value


def parse_shutdown_timeout(text: str, source: str = ev.RLM_INSTRUMENT_SHUTDOWN_TIMEOUT) -> float:
    """Seconds as a finite number >= 0 (empty: the default); ConfigError otherwise."""
    if not text.strip():
        return DEFAULT_SHUTDOWN_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"bad {source} {text!r} (expected seconds >= 0, e.g. 5)")
    return value


def check_capture(value: str, source: str) -> str:
    if value.strip().lower() not in CAPTURE_VALUES:
        raise ConfigError(
            f"unknown content capture {value!r} in {source} (choose from {', '.join(CAPTURE_VALUES)})"
        )
    return value.strip().lower()


def check_stream_usage(value: str, source: str) -> bool:
    """``RLM_STREAM_USAGE`` (set by ``--stream-usage``): read by ``instrument()`` in the program;
    checked here so a typo fails before the program starts."""
    from rlm_toolkit.genai._stream_usage import FALSE_VALUES, TRUE_VALUES

    word = value.strip().lower()
    if word not in TRUE_VALUES | FALSE_VALUES:
        raise ConfigError(f"bad {source}={value!r} (use 1 to turn stream usage on, 0 or unset for off)")
    return word in TRUE_VALUES


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
    #: ``RLM_STREAM_USAGE`` as read when the process started (the bootstrap restores the
    #: environment before a deferred instrumentation reads it).
    stream_usage: bool = False

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


def resolve(env: Mapping[str, str] | None = None, *, lenient_timeout: bool = False) -> Settings:
    """Settings from ``env`` (default ``os.environ``); raises :class:`ConfigError` on bad input.

    ``lenient_timeout``: a bad ``RLM_INSTRUMENT_SHUTDOWN_TIMEOUT`` is logged at debug level and
    the default used instead (the bootstrap: the CLI already rejected it, so only a changed
    environment gets here, and telemetry should still work).
    """
    env = os.environ if env is None else env
    jsonl_path = env.get(ev.RLM_INSTRUMENT_JSONL) or None
    wants_jsonl = any("jsonl" in env.get(var, "").lower() for var in _EXPORTER_VARS.values())
    if wants_jsonl and not jsonl_path:
        jsonl_path = DEFAULT_JSONL_PATH
    capture = env.get(ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    stream_usage = check_stream_usage(env.get(ev.RLM_STREAM_USAGE, ""), ev.RLM_STREAM_USAGE)
    try:
        timeout = parse_shutdown_timeout(env.get(ev.RLM_INSTRUMENT_SHUTDOWN_TIMEOUT, ""))
    except ConfigError as exc:
        if not lenient_timeout:
            raise
        _logger.debug("rlm-instrument: %s; using %s s", exc, DEFAULT_SHUTDOWN_TIMEOUT)
        timeout = DEFAULT_SHUTDOWN_TIMEOUT
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
        shutdown_timeout=timeout,
        stream_usage=stream_usage,
    )
