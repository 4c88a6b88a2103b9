"""The terminal's view of an eval's traces: the eval span and the task traces linked to it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import format_span_id, format_trace_id

from rlm_toolkit import attributes as rlm_attrs


class TaskStopped(SystemExit):
    """Raised in a pool worker the runner stops mid-task (Ctrl-C, or the eval ending): the
    task's run unwinds, its spans end with ``error.type`` ``TaskStopped`` and are flushed. The
    task has no results line, so a resumed eval runs it again (in a new trace)."""


def _stopped(span: Any) -> bool:
    return (span.attributes or {}).get(error_attributes.ERROR_TYPE) == TaskStopped.__qualname__


def linked_traces(spans: Iterable[Any], include_stopped: bool = False) -> dict[tuple[str, str], list[str]]:
    """(eval trace id, eval span id) -> trace ids of the root spans that link to it.

    Runs the runner stopped mid-task (:class:`TaskStopped`: no results line, run again on
    resume) are left out unless ``include_stopped``."""
    spans = list(spans)
    evals: dict[tuple[str, str], list[str]] = {
        (format_trace_id(s.context.trace_id), format_span_id(s.context.span_id)): []
        for s in spans
        if s.name.startswith(rlm_attrs.RLM_EVAL_SPAN_NAME + " ")
    }
    out: dict[tuple[str, str], list[str]] = dict(evals)
    for span in spans:
        if span.parent is not None or (_stopped(span) and not include_stopped):
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
    spans = read_spans_jsonl(path)
    everything = linked_traces(spans, include_stopped=True)
    for key, tasks in linked_traces(spans).items():
        stopped = len(everything[key]) - len(tasks)
        note = f"; {stopped} runs stopped mid-task, not counted" if stopped else ""
        lines.append(f"eval span {key[0]}/{key[1]}: {len(tasks)} task traces linked ({path}{note})")
        lines.extend(f"  └─ task trace {t}" for t in tasks)
    return lines
