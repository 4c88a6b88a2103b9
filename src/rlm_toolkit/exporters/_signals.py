"""One OTLP/JSON object per span, log record and metric (see ``_otlp_json`` for the encoding)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.trace import ReadableSpan

from rlm_toolkit.exporters._otlp_json import (
    JSON,
    any_value,
    key_values,
    nanos,
    resource_json,
    scope_json,
    span_id_hex,
    trace_id_hex,
)


def span_json(span: ReadableSpan) -> JSON:
    ctx = span.get_span_context()
    out: JSON = {
        "traceId": trace_id_hex(ctx.trace_id) if ctx else "",
        "spanId": span_id_hex(ctx.span_id) if ctx else "",
    }
    if span.parent is not None:
        out["parentSpanId"] = span_id_hex(span.parent.span_id)
    trace_state = ctx.trace_state.to_header() if ctx else ""
    if trace_state:
        out["traceState"] = trace_state
    out.update(
        {
            "flags": int(ctx.trace_flags) if ctx else 0,
            "name": span.name,
            # OTLP's SpanKind enum starts with UNSPECIFIED=0; the SDK's starts with INTERNAL=0.
            "kind": span.kind.value + 1,
            "startTimeUnixNano": nanos(span.start_time),
            "endTimeUnixNano": nanos(span.end_time),
            "attributes": key_values(span.attributes),
            "events": [
                {"timeUnixNano": nanos(e.timestamp), "name": e.name, "attributes": key_values(e.attributes)}
                for e in span.events
            ],
            "links": [
                {
                    "traceId": trace_id_hex(link.context.trace_id),
                    "spanId": span_id_hex(link.context.span_id),
                    "attributes": key_values(link.attributes),
                }
                for link in span.links
            ],
            "status": _status(span),
            "resource": resource_json(span.resource),
            "scope": scope_json(span.instrumentation_scope),
        }
    )
    return out


def _status(span: ReadableSpan) -> JSON:
    status: JSON = {"code": span.status.status_code.value}
    if span.status.description:
        status["message"] = span.status.description
    return status


def log_json(readable: ReadableLogRecord) -> JSON:
    record = readable.log_record
    out: JSON = {
        "timeUnixNano": nanos(record.timestamp),
        "observedTimeUnixNano": nanos(record.observed_timestamp),
    }
    if record.severity_number is not None:
        out["severityNumber"] = record.severity_number.value
    if record.severity_text:
        out["severityText"] = record.severity_text
    if record.event_name:
        out["eventName"] = record.event_name
    if record.body is not None:
        out["body"] = any_value(record.body)
    out["attributes"] = key_values(record.attributes)
    if record.trace_id:
        out["traceId"] = trace_id_hex(record.trace_id)
    if record.span_id:
        out["spanId"] = span_id_hex(record.span_id)
    if record.trace_flags is not None:
        out["flags"] = int(record.trace_flags)
    out["resource"] = resource_json(readable.resource)
    out["scope"] = scope_json(readable.instrumentation_scope)
    return out


def metrics_json(data: MetricsData) -> Iterator[JSON]:
    """One object per metric of one collection, each with its resource and scope."""
    for resource_metrics in data.resource_metrics:
        resource = resource_json(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_json(scope_metrics.scope)
            for metric in scope_metrics.metrics:
                out: JSON = {
                    "name": metric.name,
                    "description": metric.description or "",
                    "unit": metric.unit or "",
                }
                out.update(_metric_data(metric.data))
                out["resource"] = resource
                out["scope"] = scope
                yield out


def _number_point(point: Any) -> JSON:
    value = point.value
    key = "asInt" if isinstance(value, int) and not isinstance(value, bool) else "asDouble"
    return {
        "attributes": key_values(point.attributes),
        "startTimeUnixNano": nanos(point.start_time_unix_nano),
        "timeUnixNano": nanos(point.time_unix_nano),
        key: str(value) if key == "asInt" else value,
    }


def _histogram_point(point: Any) -> JSON:
    out: JSON = {
        "attributes": key_values(point.attributes),
        "startTimeUnixNano": nanos(point.start_time_unix_nano),
        "timeUnixNano": nanos(point.time_unix_nano),
        "count": str(point.count),
        "sum": point.sum,
        "bucketCounts": [str(c) for c in point.bucket_counts],
        "explicitBounds": list(point.explicit_bounds),
    }
    if point.count:
        out["min"] = point.min
        out["max"] = point.max
    return out


def _exponential_point(point: Any) -> JSON:
    return {
        "attributes": key_values(point.attributes),
        "startTimeUnixNano": nanos(point.start_time_unix_nano),
        "timeUnixNano": nanos(point.time_unix_nano),
        "count": str(point.count),
        "sum": point.sum,
        "scale": point.scale,
        "zeroCount": str(point.zero_count),
        "positive": {
            "offset": point.positive.offset,
            "bucketCounts": [str(c) for c in point.positive.bucket_counts],
        },
        "negative": {
            "offset": point.negative.offset,
            "bucketCounts": [str(c) for c in point.negative.bucket_counts],
        },
        "min": point.min,
        "max": point.max,
    }


def _metric_data(data: Any) -> JSON:
    if isinstance(data, Sum):
        return {
            "sum": {
                "dataPoints": [_number_point(p) for p in data.data_points],
                "aggregationTemporality": int(data.aggregation_temporality.value),
                "isMonotonic": data.is_monotonic,
            }
        }
    if isinstance(data, Gauge):
        return {"gauge": {"dataPoints": [_number_point(p) for p in data.data_points]}}
    if isinstance(data, Histogram):
        return {
            "histogram": {
                "dataPoints": [_histogram_point(p) for p in data.data_points],
                "aggregationTemporality": int(data.aggregation_temporality.value),
            }
        }
    if isinstance(data, ExponentialHistogram):
        return {
            "exponentialHistogram": {
                "dataPoints": [_exponential_point(p) for p in data.data_points],
                "aggregationTemporality": int(data.aggregation_temporality.value),
            }
        }
    return {}
