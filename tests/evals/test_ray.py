"""The same eval on a real local Ray cluster (loopback only): identical results to the pool."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rlm_toolkit.evals import EvalSpec, linked_traces, run_eval
from rlm_toolkit.exporters import JSONLSpanExporter, read_spans_jsonl
from rlm_toolkit.genai import TelemetryHandler

from .helpers import comparable, read_lines

# Ray turns a 127.0.0.1 node address into the machine's interface address, and its servers
# listen on all interfaces, unless told the cluster is single-machine (read when ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rlm-toolkit[ray]')")

SPEC = EvalSpec("gpt-4o-mini", config={"max_iterations": 6})


def _listeners() -> list[tuple[str, str]]:
    """(local address, process) of every listening TCP socket."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        rows.append((parts[3], " ".join(parts[5:])))
    return rows


@pytest.fixture(scope="module")
def cluster(worker_env: str) -> Iterator[None]:
    """One local cluster for the module, started after the workers' environment is set."""
    ray.init(
        address="local",
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        num_cpus=2,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_cluster_listens_on_loopback_only(cluster: None) -> None:
    pids = {str(p) for p in _ray_pids()}
    ours = [(addr, proc) for addr, proc in _listeners() if any(f"pid={p}," in proc for p in pids)]
    assert ours, "found no listening socket of the Ray cluster"
    bad = [(a, p) for a, p in ours if not re.match(r"^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):", a)]
    assert not bad, bad


def _ray_pids() -> set[int]:
    """This process and its descendants (the local cluster's GCS, raylet and workers)."""
    parents: dict[int, int] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found = {os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def test_ray_runs_the_eval_with_the_pools_results(
    cluster: None, tmp_path: pathlib.Path, small_tasks: str, worker_env: str
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(worker_env)))
    handler = TelemetryHandler(tracer_provider=provider)
    pool = run_eval(small_tasks, SPEC, tmp_path / "pool.jsonl", workers=2, progress=False, handler=handler)
    on_ray = run_eval(
        small_tasks, SPEC, tmp_path / "ray.jsonl", workers=2, ray="auto", progress=False, handler=handler
    )
    provider.shutdown()
    assert on_ray.summary.statuses == {"final": 6} and on_ray.summary.accuracy == 1.0
    assert comparable(on_ray.rows) == comparable(pool.rows)
    assert on_ray.summary.cost == pool.summary.cost
    assert on_ray.summary.input_tokens == pool.summary.input_tokens
    rows = [json.loads(line) for line in read_lines(tmp_path / "ray.jsonl")]
    assert on_ray.eval_trace_id is not None
    traced = {t for ids in linked_traces(read_spans_jsonl(worker_env)).values() for t in ids}
    assert {r["trace_id"] for r in rows} <= traced and len(
        rows
    ) == 6  # Ray workers exported linked task traces too


def test_rlm_eval_ray_address_on_the_command_line(
    cluster: None, tmp_path: pathlib.Path, small_tasks: str
) -> None:
    """``rlm-eval --ray ADDRESS`` joins the running cluster: same table as the pool's."""
    address = ray.get_runtime_context().gcs_address
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RLM_INSTRUMENT_JSONL",) and not k.startswith("OTEL_")
    }
    outs = []
    for extra in (["--ray", address], []):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rlm_toolkit.evals._cli",
                small_tasks,
                "-o",
                str(tmp_path / f"{len(extra)}.jsonl"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append("\n".join(line for line in proc.stdout.splitlines() if "latency" not in line))
        assert "final: 6" in proc.stdout and "6 task traces linked" in proc.stderr
    assert outs[0] == outs[1]
    rows = [json.loads(line) for line in read_lines(tmp_path / "2.jsonl")]
    assert comparable(rows) == comparable([json.loads(line) for line in read_lines(tmp_path / "0.jsonl")])
