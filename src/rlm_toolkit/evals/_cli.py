"""``rlm-eval``: run a task file, or generate offline tasks (``rlm-eval generate ...``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from rlm_toolkit.evals._tasks import TaskFileError, load_tasks

_TELEMETRY_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "RLM_INSTRUMENT_JSONL",
)


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlm-eval",
        description="Run an RLM over every task of a JSONL task file, in parallel, one trace per task. "
        "Without OPENAI_API_KEY it runs against the bundled offline model server. "
        "`rlm-eval generate niah|oolong DIR` writes offline tasks.",
    )
    p.add_argument("tasks", help="task file (JSONL: id, prompt, context or context_path, answer, scorer)")
    p.add_argument("-o", "--output", help="results JSONL (default: TASKS stem + .results.jsonl)")
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("--sub-model")
    p.add_argument("--base-url", help="OpenAI-compatible base URL (default: OPENAI_BASE_URL)")
    p.add_argument("-j", "--workers", type=int, default=2, help="tasks at a time (default 2)")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="run the tasks as Ray tasks on this cluster")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip tasks already in the output (default); --no-resume refuses an existing output",
    )
    p.add_argument("--max-cost", type=float, help="stop starting tasks once the eval cost this much (USD)")
    p.add_argument("--max-seconds", type=float, help="stop starting tasks after this many seconds")
    p.add_argument("--max-iterations", type=int, help="RLMConfig.max_iterations per task")
    p.add_argument("--max-depth", type=int, help="RLMConfig.max_depth per task")
    p.add_argument("--task-seconds", type=float, help="RLMConfig.max_seconds per task")
    p.add_argument("--name", default=None, help="the eval's name on its span (default: the task file's stem)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (off anyway when not a TTY)")
    return p


def _generate(argv: Sequence[str]) -> int:
    from rlm_toolkit.evals._generate import aggregation_tasks, needle_tasks

    p = argparse.ArgumentParser(
        prog="rlm-eval generate", description="Write offline tasks with known answers."
    )
    p.add_argument("kind", choices=("niah", "oolong"))
    p.add_argument("out_dir")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--chars", type=int, default=100_000, help="niah: context size (10k..10M)")
    p.add_argument("--records", type=int, default=2_000, help="oolong: records per context")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        if a.kind == "niah":
            path = needle_tasks(a.out_dir, a.count, a.chars, a.seed)
        else:
            path = aggregation_tasks(a.out_dir, a.count, a.records, a.seed)
    except ValueError as exc:
        print(f"rlm-eval generate: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _telemetry(output: str) -> Any:
    """Providers from ``OTEL_*`` (shared with the workers through the environment); with none
    configured, traces and evaluation records go to ``<output stem>.traces.jsonl``."""
    from rlm_toolkit.auto._config import resolve
    from rlm_toolkit.auto._providers import build_telemetry

    if not any(os.environ.get(var) for var in _TELEMETRY_VARS):
        os.environ["RLM_INSTRUMENT_JSONL"] = _stem(output) + ".traces.jsonl"
        os.environ["OTEL_TRACES_EXPORTER"] = "jsonl"
        os.environ["OTEL_LOGS_EXPORTER"] = "jsonl"
        os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
    settings = resolve()
    return build_telemetry(settings), settings


def _stem(path: str) -> str:
    root, ext = os.path.splitext(path)
    if root.endswith(".results"):
        root = root[: -len(".results")]
    return root if ext == ".jsonl" else path


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rlm-eval`` console script; returns the exit status (130 after Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        return _generate(argv[1:])
    a = _run_parser().parse_args(argv)
    from rich.console import Console

    from rlm_toolkit.auto._config import ConfigError
    from rlm_toolkit.evals._runner import EvalInterrupted, run_eval
    from rlm_toolkit.evals._spec import EvalSpec
    from rlm_toolkit.evals._traces import describe
    from rlm_toolkit.genai import TelemetryHandler

    try:
        tasks = load_tasks(a.tasks)
        config = {
            k: v
            for k, v in (
                ("max_iterations", a.max_iterations),
                ("max_depth", a.max_depth),
                ("max_seconds", a.task_seconds),
            )
            if v is not None
        }
        spec = EvalSpec(a.model, a.sub_model, a.base_url, config)
        if a.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {a.workers}")
    except (TaskFileError, ValueError) as exc:
        print(f"rlm-eval: {exc}", file=sys.stderr)
        return 2
    output = a.output or _stem(a.tasks) + ".results.jsonl"
    if os.path.exists(output) and not a.resume:
        print(
            f"rlm-eval: {output} exists; drop --no-resume to resume it, or pass another -o", file=sys.stderr
        )
        return 2
    if a.base_url is None:
        from rlm_toolkit.testing import offline_if_no_key

        offline_if_no_key()
    try:
        telemetry, settings = _telemetry(output)
    except ConfigError as exc:
        print(f"rlm-eval: {exc}", file=sys.stderr)
        return 2
    handler = TelemetryHandler(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider
    )
    status = 0
    report = None
    try:
        report = run_eval(
            tasks,
            spec,
            output,
            workers=a.workers,
            ray=a.ray,
            max_cost=a.max_cost,
            max_seconds=a.max_seconds,
            name=a.name or os.path.basename(_stem(a.tasks)),
            handler=handler,
            progress=False if a.no_progress else None,
        )
    except EvalInterrupted as exc:
        print(f"rlm-eval: {exc}; rerun the same command to resume", file=sys.stderr)
        status = 130
    finally:
        telemetry.shutdown(settings.shutdown_timeout)
    if report is not None:
        if report.skipped:
            print(
                f"resumed: {report.skipped} tasks already in {output}, {report.ran} run now", file=sys.stderr
            )
        if report.stopped_by:
            print(
                f"stopped by --{report.stopped_by.replace('_', '-')}: {len(report.not_run)} tasks not started",
                file=sys.stderr,
            )
        Console().print(report.summary.table())
        if settings.jsonl_path:
            for line in describe(settings.jsonl_path):
                print(line, file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
