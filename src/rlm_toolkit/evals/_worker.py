"""One task in a worker process: telemetry from the ``OTEL_*`` settings (once per process), the
run as the root of its own trace linked to the eval span, its score as an evaluation record,
and a flush before the result goes back."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context

from rlm_toolkit._safety import contain
from rlm_toolkit.evals._scorers import score
from rlm_toolkit.evals._spec import EvalSpec
from rlm_toolkit.evals._tasks import Task
from rlm_toolkit.genai import TelemetryHandler, emit_evaluation, link_from_carrier, linked_run

#: Per worker process: the telemetry and the RLM built for a spec (reused across its tasks).
_state: dict[str, Any] = {}


def _telemetry() -> Any:
    """This process's providers, built once from the ``OTEL_*`` environment as
    ``rlm-instrument`` builds them, installed as the global ones, ``openai`` instrumented."""
    if "telemetry" not in _state:
        from opentelemetry import trace
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.metrics import set_meter_provider

        from rlm_toolkit import instrument
        from rlm_toolkit.auto._config import resolve
        from rlm_toolkit.auto._providers import build_telemetry

        settings = resolve()
        telemetry = build_telemetry(settings)
        trace.set_tracer_provider(telemetry.tracer_provider)
        set_logger_provider(telemetry.logger_provider)
        set_meter_provider(telemetry.meter_provider)
        kwargs: dict[str, Any] = {}
        if settings.capture_content is not None:
            kwargs["capture_content"] = settings.capture_content
        instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            logger_provider=telemetry.logger_provider,
            **kwargs,
        )
        _state["telemetry"] = telemetry
        _state["handler"] = TelemetryHandler(
            tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider
        )
    return _state["telemetry"]


def shutdown_worker() -> None:
    """Flush and shut this process's telemetry down (a pool worker leaving)."""
    _end_ready()
    telemetry = _state.pop("telemetry", None)
    if telemetry is not None:
        telemetry.shutdown(10.0)


def _rlm(spec: EvalSpec) -> Any:
    key = ("rlm", spec)
    if _state.get("spec") != key:
        _end_ready()
        _state["spec"] = key
        rlm = spec.build()
        # The next task's sandbox worker starts while this one runs, so no task waits for one;
        # each task still gets a fresh worker (one that ran a task's code is never reused).
        _state["ready"] = rlm.keep_sandbox_ready()
        _state["rlm"] = rlm
    return _state["rlm"]


def _end_ready() -> None:
    ready = _state.pop("ready", None)
    if ready is not None:
        try:
            ready.close()
        except Exception as exc:
            contain("evals: end the sandbox kept ready", exc)


def run_task(
    spec: EvalSpec, task_data: Mapping[str, Any], carriers: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """Run one task and return its results line (a JSON-able dict); never raises for a task's
    own failure (that is its ``status``). The run links to the span of each W3C carrier in
    ``carriers`` (this eval's span, and the first one's when the eval was resumed)."""
    start = time.perf_counter()
    task = Task.from_dict(task_data)
    row: dict[str, Any] = {"id": task.id, "status": "error", "answer": "", "expected": task.answer}
    telemetry = _telemetry()
    links = [link for link in map(link_from_carrier, carriers) if link is not None]
    token = otel_context.attach(otel_context.Context())  # the run is the root of its own trace
    try:
        with linked_run(links) as claim:
            try:
                result = _rlm(spec).run(task.prompt, task.load_context(), raise_on_error=False)
            except Exception as exc:  # a bad task (unreadable context, ...) fails that task only
                row["error"] = f"{type(exc).__name__}: {exc}"
                result = None
            if result is not None:
                row.update(_fields(result))
            row["score"] = _score(task, row)
            row["label"] = _label(row)
            if row["score"] is not None:
                try:
                    emit_evaluation(
                        _state["handler"],
                        claim.span,
                        task.scorer,
                        row["score"],
                        row["label"],
                        f"{task.scorer} scorer: {row['label']}" if result is not None else row.get("error"),
                    )
                except Exception as exc:
                    contain("evals: emit evaluation", exc)
    finally:
        otel_context.detach(token)
        for provider in (telemetry.tracer_provider, telemetry.logger_provider):
            try:
                provider.force_flush()
            except Exception as exc:
                contain("evals: flush telemetry", exc)
    row["seconds"] = round(time.perf_counter() - start, 4)
    return row


def _fields(result: Any) -> dict[str, Any]:
    usage = result.usage
    return {
        "status": result.status,
        "answer": result.answer,
        "input_tokens": usage.prompt_tokens if usage.known else None,
        "output_tokens": usage.completion_tokens if usage.known else None,
        "cost": result.cost,
        "iterations": result.iterations,
        "subcalls": result.subcalls,
        "trace_id": result.trace_id,
        **({"error": f"{type(result.error).__name__}: {result.error}"} if result.error is not None else {}),
    }


def _score(task: Task, row: Mapping[str, Any]) -> float | None:
    if task.answer is None:
        return None
    if row["status"] in ("error",):
        return 0.0
    return score(task.scorer, str(row.get("answer") or ""), task.answer)


def _label(row: Mapping[str, Any]) -> str:
    value = row.get("score")
    if value is None:
        return "unscored"
    return "pass" if value >= 1.0 else "fail"
