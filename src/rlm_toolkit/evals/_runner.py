"""The eval loop: tasks in, results lines out, as they finish, on a pool or a Ray cluster."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import format_trace_id

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit.evals._progress import EvalProgress
from rlm_toolkit.evals._results import EvalSummary, ResultsFile
from rlm_toolkit.evals._spec import EvalSpec
from rlm_toolkit.evals._tasks import Task, load_tasks
from rlm_toolkit.genai import TelemetryHandler, eval_carrier, start_eval_span


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during an eval: the workers are stopped, every finished task is in the file."""

    def __init__(self, finished: int, total: int, output: str) -> None:
        super().__init__(f"interrupted: {finished} of {total} tasks finished (in {output})")
        self.finished = finished
        self.total = total
        self.output = output


@dataclass
class EvalReport:
    """What :func:`run_eval` did: the summary over the whole results file, this call's rows."""

    summary: EvalSummary
    rows: list[dict[str, Any]]
    ran: int
    skipped: int
    #: Why new tasks stopped early (``max_cost``/``max_seconds``), else None.
    stopped_by: str | None = None
    eval_trace_id: str | None = None
    not_run: list[str] = field(default_factory=list)


def _backend(spec: EvalSpec, workers: int, ray: str | None, start_method: str) -> Any:
    if ray is not None:
        from rlm_toolkit.evals._ray import RayBackend

        return RayBackend(spec, ray, workers)
    from rlm_toolkit.evals._pool import ProcessPool

    return ProcessPool(spec, workers, start_method)


def run_eval(
    tasks: str | os.PathLike[str] | Sequence[Task],
    spec: EvalSpec,
    output: str | os.PathLike[str],
    *,
    workers: int = 2,
    ray: str | None = None,
    resume: bool = True,
    max_cost: float | None = None,
    max_seconds: float | None = None,
    name: str = "eval",
    handler: TelemetryHandler | None = None,
    progress: bool | None = None,
    start_method: str = "spawn",
) -> EvalReport:
    """Run every task of ``tasks`` (a JSONL path or :class:`Task` list) with ``spec`` on
    ``workers`` processes (or, with ``ray`` = ``"auto"``/an address, as Ray tasks), appending
    one line per finished task to ``output``.

    Tasks already in ``output`` are skipped (``resume``; with ``resume=False`` an existing
    file is refused). ``max_cost`` (USD, the whole file's) and ``max_seconds`` (this call's
    wall time) stop new tasks; running ones finish. Ctrl-C stops the workers and raises
    :class:`EvalInterrupted` (a ``KeyboardInterrupt``) after the finished lines are written.
    The eval is one span (``handler``'s tracer; default: the global providers); each task's
    run is the root of its own trace, linked to it.
    """
    task_list = load_tasks(tasks) if isinstance(tasks, (str, os.PathLike)) else list(tasks)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    for label, value in (("max_cost", max_cost), ("max_seconds", max_seconds)):
        if value is not None and value <= 0:
            raise ValueError(f"{label} must be > 0, got {value}")
    results = ResultsFile(output)
    ids = {t.id for t in task_list}
    if os.path.exists(results.path) and not resume:
        raise FileExistsError(f"{results.path} exists; resume it, or choose another output file")
    previous = [r for r in results.read() if r["id"] in ids]
    done = {r["id"] for r in previous}
    todo = [t for t in task_list if t.id not in done]
    handler = handler if handler is not None else TelemetryHandler()
    span = start_eval_span(handler, name, {rlm_attrs.RLM_EVAL_TASKS: len(task_list)})
    carrier = eval_carrier(span)
    # Resumed: each task also links to the first invocation's eval span, so one eval span
    # has every task trace linked to it however often the eval was interrupted.
    first = next((r["eval_traceparent"] for r in previous if r.get("eval_traceparent")), None)
    carriers = [carrier] + ([{"traceparent": first}] if first and first != carrier.get("traceparent") else [])
    ctx = span.get_span_context()
    report = EvalReport(
        EvalSummary.of(previous),
        list(previous),
        0,
        len(done),
        eval_trace_id=format_trace_id(ctx.trace_id) if ctx.is_valid else None,
    )
    bar = EvalProgress(len(task_list), len(done), progress)
    cost = sum(float(r.get("cost") or 0.0) for r in previous)
    started = time.monotonic()
    backend: Any = None
    queue = list(todo)
    try:
        backend = _backend(spec, workers, ray, start_method) if todo else None
        while backend is not None and (queue or backend.running):
            if report.stopped_by is None:
                if max_cost is not None and cost >= max_cost:
                    report.stopped_by = "max_cost"
                elif max_seconds is not None and time.monotonic() - started >= max_seconds:
                    report.stopped_by = "max_seconds"
            while queue and report.stopped_by is None and backend.running < backend.capacity:
                backend.submit(queue.pop(0).to_dict(), carriers)
            if not backend.running:
                break
            for row in backend.poll(0.5):
                row["eval_trace_id"] = report.eval_trace_id
                row["eval_traceparent"] = first or carrier.get("traceparent")
                results.append(row)
                report.rows.append(row)
                report.ran += 1
                cost += float(row.get("cost") or 0.0)
                bar.update(row)
    except KeyboardInterrupt:
        bar.stop()
        _close(backend, span, report, results, wait=False)
        # Counted from the file: Ctrl-C may land between writing a line and noting it here.
        finished = len({r["id"] for r in results.read() if r["id"] in ids})
        raise EvalInterrupted(finished, len(task_list), results.path) from None
    bar.stop()
    report.not_run = [t.id for t in queue]
    _close(backend, span, report, results, wait=True)
    report.summary = EvalSummary.of(report.rows, not_started=len(report.not_run))
    return report


def _close(backend: Any, span: Any, report: EvalReport, results: ResultsFile, *, wait: bool) -> None:
    results.close()
    try:
        if backend is not None:
            backend.close(wait)
    finally:
        summary = EvalSummary.of(report.rows)
        span.set_attribute(rlm_attrs.RLM_EVAL_FINISHED, len(report.rows))
        if summary.accuracy is not None:
            span.set_attribute(rlm_attrs.RLM_EVAL_ACCURACY, summary.accuracy)
        span.end()
