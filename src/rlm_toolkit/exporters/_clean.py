"""Strings that cannot be encoded (lone surrogates) replaced before they reach an exporter.

A Python ``str`` may hold a lone surrogate (``"\\ud800"``: from ``surrogateescape``-decoded
bytes, a bad JSON escape, a user's prompt); UTF-8 cannot encode it. The OTLP encoder then logs a
traceback into the app's stderr and drops the attribute; a JSON encoder fails the whole batch.
:class:`CleanSpanExporter` / :class:`CleanLogExporter` hand the exporter they wrap a copy of
each span or record that holds such a string, with every lone surrogate replaced by U+FFFD;
everything else passes through untouched (one regex search per string, in the export thread).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _bad(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, (list, tuple)):
        return any(_bad(item) for item in value)
    if isinstance(value, dict):
        return any(_bad(key) or _bad(item) for key, item in value.items())
    return False


def clean(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (nested too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, tuple):
        return tuple(clean(item) for item in value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def _bad_attributes(attributes: Any) -> bool:
    return bool(attributes) and any(_bad(k) or _bad(v) for k, v in attributes.items())


def clean_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself when all its strings encode; else a copy with them replaced."""
    description = span.status.description
    if not (
        _bad(span.name)
        or _bad_attributes(span.attributes)
        or any(_bad(e.name) or _bad_attributes(e.attributes) for e in span.events)
        or (description is not None and _bad(description))
    ):
        return span
    return ReadableSpan(
        name=clean(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=clean(dict(span.attributes or {})),
        events=[Event(clean(e.name), clean(dict(e.attributes or {})), e.timestamp) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, clean(description) if description is not None else None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def clean_log(readable: ReadableLogRecord) -> ReadableLogRecord:
    record = readable.log_record
    if not (_bad(record.body) or _bad_attributes(record.attributes) or _bad(record.event_name)):
        return readable
    copied = copy.copy(record)
    copied.body = clean(record.body)
    copied.attributes = clean(dict(record.attributes or {}))
    copied.event_name = clean(record.event_name)
    return dataclasses.replace(readable, log_record=copied)


class CleanSpanExporter(SpanExporter):
    """Wraps ``inner``; see the module docstring."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([clean_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CleanLogExporter(LogRecordExporter):
    """Wraps ``inner``; see the module docstring."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self.inner.export([clean_log(record) for record in batch])

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
