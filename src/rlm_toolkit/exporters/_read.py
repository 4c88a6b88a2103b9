"""Read spans back from a JSONL file written by :class:`JSONLSpanExporter`.

The result is a list of real SDK ``ReadableSpan`` objects, so a saved trace can be replayed
through any span processor or exporter (e.g. the callbacks' span exporter).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from rlm_toolkit.exporters._otlp_json import decode_attributes


def _is_span(obj: Any) -> bool:
    # Logs carry timeUnixNano and metrics carry no spanId: only spans have both of these.
    return isinstance(obj, dict) and "spanId" in obj and "startTimeUnixNano" in obj


def _context(trace_id: str, span_id: str, flags: int = 0, state: str = "") -> SpanContext:
    return SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=False,
        trace_flags=TraceFlags(flags),
        trace_state=TraceState.from_header([state]) if state else None,
    )


def span_from_json(obj: Mapping[str, Any]) -> ReadableSpan:
    """The ``ReadableSpan`` of one OTLP/JSON span object (as written by ``JSONLSpanExporter``)."""
    parent_id = obj.get("parentSpanId")
    scope = obj.get("scope") or {}
    status = obj.get("status") or {}
    return ReadableSpan(
        name=obj.get("name", ""),
        context=_context(obj["traceId"], obj["spanId"], int(obj.get("flags", 0)), obj.get("traceState", "")),
        parent=_context(obj["traceId"], parent_id) if parent_id else None,
        resource=Resource(decode_attributes((obj.get("resource") or {}).get("attributes"))),
        attributes=decode_attributes(obj.get("attributes")),
        events=[
            Event(e.get("name", ""), decode_attributes(e.get("attributes")), int(e.get("timeUnixNano", 0)))
            for e in obj.get("events", ())
        ],
        links=[
            Link(_context(link["traceId"], link["spanId"]), decode_attributes(link.get("attributes")))
            for link in obj.get("links", ())
        ],
        kind=SpanKind(max(int(obj.get("kind", 1)) - 1, 0)),
        status=Status(StatusCode(int(status.get("code", 0))), status.get("message")),
        start_time=int(obj.get("startTimeUnixNano", 0)),
        end_time=int(obj.get("endTimeUnixNano", 0)),
        instrumentation_scope=InstrumentationScope(
            scope.get("name", ""),
            scope.get("version"),
            scope.get("schemaUrl"),
            decode_attributes(scope.get("attributes")) or None,
        ),
    )


def read_spans_jsonl(path: str | os.PathLike[str]) -> list[ReadableSpan]:
    """All spans in a JSONL file, in file order; log and metric lines are skipped.

    A torn last line (the writer was killed mid-write) is ignored; any other malformed line
    raises ``ValueError`` naming the line number.
    """
    spans: list[ReadableSpan] = []
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no trailing newline: the last write was cut short
                break
            raise ValueError(f"{os.fspath(path)}:{number}: not a JSON object ({exc.msg})") from None
        if _is_span(obj):
            spans.append(span_from_json(obj))
    return spans
