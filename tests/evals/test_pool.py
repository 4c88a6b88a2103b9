"""The process pool end to end against the bundled offline server: results, one trace per task
linked to the eval span, evaluation records parented to each run, resume, a killed worker."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import format_span_id, format_trace_id

from rlm_toolkit.evals import EvalSpec, linked_traces, load_tasks, run_eval
from rlm_toolkit.exporters import JSONLSpanExporter, read_spans_jsonl
from rlm_toolkit.genai import TelemetryHandler

from .helpers import comparable, read_lines

SPEC = EvalSpec("gpt-4o-mini", config={"max_iterations": 6})


def test_pool_runs_every_task_one_trace_each_linked_to_the_eval(
    tmp_path: pathlib.Path, small_tasks: str, worker_env: str
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(worker_env)))
    handler = TelemetryHandler(tracer_provider=provider)
    output = tmp_path / "results.jsonl"

    report = run_eval(small_tasks, SPEC, output, workers=2, handler=handler, progress=False)
    provider.shutdown()

    rows = [json.loads(line) for line in read_lines(output)]
    assert sorted(r["id"] for r in rows) == sorted(t.id for t in load_tasks(small_tasks))
    assert all(r["status"] == "final" and r["score"] == 1.0 for r in rows), rows
    assert report.summary.accuracy == 1.0 and report.summary.statuses == {"final": 6}
    assert all(r["input_tokens"] > 0 and r["subcalls"] > 0 and r["iterations"] > 0 for r in rows)
    assert "sk-" not in output.read_text()  # the key stays in the workers' environment

    spans = read_spans_jsonl(worker_env)
    (eval_key,) = [k for k in linked_traces(spans)]
    linked = linked_traces(spans)[eval_key]
    assert sorted(linked) == sorted(r["trace_id"] for r in rows)  # six traces, all linked
    assert report.eval_trace_id == eval_key[0] and eval_key[0] not in linked
    roots = {format_trace_id(s.context.trace_id): s for s in spans if s.parent is None and s.links}
    assert all(roots[r["trace_id"]].name == "invoke_agent rlm" for r in rows)

    records = [
        json.loads(line)
        for line in read_lines(worker_env)
        if '"eventName":"gen_ai.evaluation.result"' in line.replace(" ", "")
    ]
    assert len(records) == 6
    for record in records:  # parented to the run span of its task's trace
        root = roots[record["traceId"]]
        assert record["spanId"] == format_span_id(root.context.span_id)

    again = run_eval(small_tasks, SPEC, output, workers=2, handler=handler, progress=False)
    assert again.ran == 0 and again.skipped == 6
    assert comparable(again.rows) == comparable(rows) and len(read_lines(output)) == 6


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [int(line.split()[0]) for line in out.stdout.splitlines() if "spawn_main" in line]


def test_a_killed_worker_fails_its_task_and_the_eval_goes_on(
    tmp_path: pathlib.Path, small_tasks: str
) -> None:
    output = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlm_toolkit.evals._cli", small_tasks, "-o", str(output), "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )
    try:
        deadline = time.monotonic() + 90
        while len(read_lines(output)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the worker has taken the second task
        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in read_lines(output)]
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    died = [r for r in rows if r["status"] == "worker_died"]
    assert len(died) == 1 and f"worker process {worker} killed by signal 9" in died[0]["error"]
    assert sum(r["status"] == "final" for r in rows) == 5
    assert "worker_died: 1" in out and "final: 5" in out
