"""Read an OTLP JSON lines file (as ``JSONLSpanExporter`` and friends write it) for the viewer.

Tolerant of what real files contain: logs and metrics beside the spans (log records that name a
span are kept, the viewer shows them on it), unknown keys (a scope schema URL, say), unfinished
spans (no end time), a torn last line. Anything that is not OTLP JSON lines is refused with one
line naming the problem and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlm_toolkit.exporters._otlp_json import decode_attributes

_FIX = "give a file written by `rlm-instrument --jsonl FILE` or JSONLSpanExporter"


@dataclass
class OTLPLines:
    """The spans and span-linked log records of one OTLP JSON lines file (raw OTLP/JSON objects)."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    metrics: int = 0


def _kind(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    if "spanId" in obj and "startTimeUnixNano" in obj and "traceId" in obj:
        return "span"
    if "timeUnixNano" in obj or "observedTimeUnixNano" in obj:
        return "log"
    if "name" in obj and any(
        k in obj for k in ("sum", "gauge", "histogram", "exponentialHistogram", "summary")
    ):
        return "metric"
    return None


def read_otlp_jsonl(path: str | os.PathLike[str]) -> OTLPLines:
    """Spans, span-linked log records and the metric count of an OTLP JSON lines file.

    Raises ``ValueError`` with a one-line message when the path is missing, is a directory, is
    not UTF-8, or holds a line that is not an OTLP/JSON span, log record or metric (a torn last
    line is ignored). An empty file gives an empty result.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise ValueError(f"{name}: no such file ({_FIX})")
    if os.path.isdir(name):
        raise ValueError(f"{name}: is a directory ({_FIX})")
    try:
        with open(name, encoding="utf-8") as file:
            lines = file.read().split("\n")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not UTF-8 text, so not OTLP JSON lines ({_FIX})") from None
    except OSError as exc:
        raise ValueError(f"{name}: cannot read ({exc.strerror}; {_FIX})") from None
    result = OTLPLines()
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == last and number == len(lines):  # no trailing newline: a torn last write
                break
            raise ValueError(
                f"{name}:{number}: not JSON ({exc.msg}), so not OTLP JSON lines ({_FIX})"
            ) from None
        kind = _kind(obj)
        if kind is None:
            raise ValueError(f"{name}:{number}: not an OTLP/JSON span, log record or metric ({_FIX})")
        if kind == "span":
            result.spans.append(obj)
        elif kind == "log":
            if obj.get("spanId"):
                result.logs.append(obj)
        else:
            result.metrics += 1
    return result


def _nanos(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number or None


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a decoded attribute value (bytes become hex)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _attrs(items: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in decode_attributes(items if isinstance(items, list) else None).items()}


def compact(spans: Iterable[Mapping[str, Any]], logs: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The viewer's data: spans with times in microseconds from the earliest start (``b``/``e``,
    ``e`` is None for an unfinished span), decoded attributes and events; log records that name a
    span become events on it. Nanosecond epochs do not fit a JavaScript number; offsets do."""
    spans = list(spans)
    starts = [n for n in (_nanos(s.get("startTimeUnixNano")) for s in spans) if n]
    origin = min(starts, default=0)

    def offset(value: Any) -> float | None:
        n = _nanos(value)
        return None if n is None else round((n - origin) / 1000, 1)

    by_id: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for span in spans:
        status = span.get("status") or {}
        trace_id, span_id = str(span.get("traceId", "")), str(span.get("spanId", ""))
        item: dict[str, Any] = {
            "t": trace_id,
            "s": span_id,
            "p": str(span.get("parentSpanId") or ""),
            "n": str(span.get("name", "")),
            "k": int(span.get("kind", 0) or 0),
            "b": offset(span.get("startTimeUnixNano")) or 0,
            "e": offset(span.get("endTimeUnixNano")),
            "c": int(status.get("code", 0) or 0),
            "m": str(status.get("message") or ""),
            "a": _attrs(span.get("attributes")),
            "v": [
                {
                    "n": str(e.get("name", "")),
                    "b": offset(e.get("timeUnixNano")),
                    "a": _attrs(e.get("attributes")),
                }
                for e in span.get("events") or ()
                if isinstance(e, dict)
            ],
            "r": str(_attrs((span.get("resource") or {}).get("attributes")).get("service.name", "")),
        }
        by_id[(trace_id, span_id)] = item
        out.append(item)
    for log in logs:
        target = by_id.get((str(log.get("traceId", "")), str(log.get("spanId", ""))))
        if target is not None:
            name = log.get("eventName") or "log"
            body = log.get("body")
            attributes = _attrs(log.get("attributes"))
            if isinstance(body, dict):
                attributes["body"] = _plain(decode_attributes([{"key": "body", "value": body}]).get("body"))
            target["v"].append(
                {
                    "n": str(name),
                    "b": offset(log.get("timeUnixNano") or log.get("observedTimeUnixNano")),
                    "a": attributes,
                }
            )
    return {"spans": out, "origin_ns": str(origin)}
