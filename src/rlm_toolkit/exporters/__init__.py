"""Exporters of our own: a console trace tree, JSONL files (OTLP/JSON, one object a line) and
an offline HTML viewer of those files (``write_html``, the ``rlm-view`` command)."""

from __future__ import annotations

from rlm_toolkit.exporters._jsonl import JSONLLogExporter, JSONLMetricExporter, JSONLSpanExporter
from rlm_toolkit.exporters._read import read_spans_jsonl, span_from_json
from rlm_toolkit.exporters._tree import ConsoleTreeExporter
from rlm_toolkit.exporters._view_html import write_html
from rlm_toolkit.exporters._view_read import OTLPLines, read_otlp_jsonl

__all__ = [
    "ConsoleTreeExporter",
    "JSONLLogExporter",
    "JSONLMetricExporter",
    "JSONLSpanExporter",
    "OTLPLines",
    "read_otlp_jsonl",
    "read_spans_jsonl",
    "span_from_json",
    "write_html",
]
