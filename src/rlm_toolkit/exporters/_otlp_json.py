"""Encode SDK telemetry as OTLP/JSON objects (and decode spans back).

Field names and value encodings follow the OTLP/JSON mapping of opentelemetry-proto: ids are
lowercase hex, 64-bit integers (times, ``intValue``, counts) are decimal strings, enums are their
integer values, attribute values are ``AnyValue`` objects. One object is one span, one log
record or one metric, with its ``resource`` and ``scope`` inlined so every line stands alone.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

JSON = dict[str, Any]


def any_value(value: Any) -> JSON:
    """``AnyValue`` of an attribute/body value."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": key_values(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any] | None) -> list[JSON]:
    return [{"key": str(k), "value": any_value(v)} for k, v in (attributes or {}).items()]


def decode_value(value: Mapping[str, Any]) -> Any:
    """Python value of an ``AnyValue`` (accepts ints written as numbers or strings)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    if "arrayValue" in value:
        return tuple(decode_value(v) for v in value["arrayValue"].get("values", []))
    if "kvlistValue" in value:
        return decode_attributes(value["kvlistValue"].get("values", []))
    return None


def decode_attributes(items: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: decode_value(item.get("value", {})) for item in items or ()}


def resource_json(resource: Resource | None) -> JSON:
    return {"attributes": key_values(resource.attributes if resource else None)}


def scope_json(scope: InstrumentationScope | None) -> JSON:
    if scope is None:
        return {}
    out: JSON = {"name": scope.name}
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = key_values(scope.attributes)
    # OTLP carries the schema URL on ScopeSpans/ScopeLogs/ScopeMetrics; a line inlines its scope,
    # so the URL goes with it: which convention mode wrote a file stays readable.
    if scope.schema_url:
        out["schemaUrl"] = scope.schema_url
    return out


def trace_id_hex(trace_id: int) -> str:
    return f"{trace_id:032x}"


def span_id_hex(span_id: int) -> str:
    return f"{span_id:016x}"


def nanos(value: int | None) -> str:
    return str(value or 0)
