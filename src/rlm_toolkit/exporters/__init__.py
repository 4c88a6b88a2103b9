"""Exporters of our own: a console trace tree and JSONL files (OTLP/JSON, one object a line)."""

from __future__ import annotations

from rlm_toolkit.exporters._jsonl import JSONLLogExporter, JSONLMetricExporter, JSONLSpanExporter
from rlm_toolkit.exporters._read import read_spans_jsonl, span_from_json
from rlm_toolkit.exporters._tree import ConsoleTreeExporter

__all__ = [
    "ConsoleTreeExporter",
    "JSONLLogExporter",
    "JSONLMetricExporter",
    "JSONLSpanExporter",
    "read_spans_jsonl",
    "span_from_json",
]
