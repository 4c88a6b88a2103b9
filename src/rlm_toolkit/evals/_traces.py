"""The terminal's view of an eval's traces: the eval span and the task traces linked to it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from opentelemetry.trace import format_span_id, format_trace_id

from rlm_toolkit import attributes as rlm_attrs


def linked_traces(spans: Iterable[Any]) -> dict[tuple[str, str], list[str]]:
    """(eval trace id, eval span id) -> trace ids of the root spans that link to it."""
    spans = list(spans)
    evals: dict[tuple[str, str], list[str]] = {
        (format_trace_id(s.context.trace_id), format_span_id(s.context.span_id)): []
        for s in spans
        if s.name.startswith(rlm_attrs.RLM_EVAL_SPAN_NAME + " ")
    }
    out: dict[tuple[str, str], list[str]] = dict(evals)
    for span in spans:
        if span.parent is not None:
            continue
        for link in span.links:
            key = (format_trace_id(link.context.trace_id), format_span_id(link.context.span_id))
            if key in out:
                out[key].append(format_trace_id(span.context.trace_id))
    return out


def describe(path: str) -> list[str]:
    """Lines for the terminal: each eval span in the traces file and its linked task traces."""
    if not os.path.exists(path):
        return []
    from rlm_toolkit.exporters import read_spans_jsonl

    lines = []
    for (trace_id, span_id), tasks in linked_traces(read_spans_jsonl(path)).items():
        lines.append(f"eval span {trace_id}/{span_id}: {len(tasks)} task traces linked ({path})")
        lines.extend(f"  └─ task trace {t}" for t in tasks)
    return lines
