"""The issue's "done when" on the command line: 20 offline tasks with one command, Ctrl-C,
resume, the same table, and 20 traces linked to one eval span; the eval-wide cost budget."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from rlm_toolkit.evals import linked_traces, needle_tasks
from rlm_toolkit.exporters import read_spans_jsonl

from .helpers import read_lines


def _env() -> dict[str, str]:
    drop = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RLM_INSTRUMENT_JSONL")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OTEL_")}


def _cli(*args: str, cwd: pathlib.Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rlm_toolkit.evals._cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_env(),
        start_new_session=True,
    )


def _table(stdout: str) -> str:
    """The summary table without the latency rows (the only lines that vary between runs)."""
    return "\n".join(line for line in stdout.splitlines() if "latency" not in line)


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return pathlib.Path(needle_tasks(str(tmp_path_factory.mktemp("twenty")), count=20, chars=10_000))


def test_interrupt_resume_same_table_and_twenty_linked_traces(twenty: pathlib.Path) -> None:
    cwd = twenty.parent
    results = cwd / "niah.results.jsonl"
    proc = _cli(twenty.name, "-j", "2", cwd=cwd)
    try:
        deadline = time.monotonic() + 120
        while len(read_lines(results)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    finished = len(read_lines(results))
    assert 3 <= finished < 20
    assert (
        f"interrupted: {finished} of 20 tasks finished" in err and "rerun the same command to resume" in err
    )

    resumed = _cli(twenty.name, "-j", "2", cwd=cwd)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed: {finished} tasks already in niah.results.jsonl, {20 - finished} run now" in err
    rows = [json.loads(line) for line in read_lines(results)]
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20  # none ran twice
    assert "100.0% (20 scored)" in out and "final: 20" in out

    again = _cli(twenty.name, cwd=cwd)  # nothing left to run: the same table
    out2, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and _table(out2) == _table(out)

    spans = read_spans_jsonl(cwd / "niah.traces.jsonl")
    linked = linked_traces(spans)
    first = rows[0]["eval_traceparent"].split("-")
    assert sorted(linked[(first[1], first[2])]) == sorted(r["trace_id"] for r in rows)
    assert "20 task traces linked" in err + out


def test_max_cost_stops_new_tasks(tmp_path: pathlib.Path) -> None:
    tasks = needle_tasks(str(tmp_path), count=4, chars=10_000)
    proc = _cli(tasks, "-j", "1", "--max-cost", "0.0001", "-o", "out.jsonl", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(read_lines(tmp_path / "out.jsonl")) == 1
    assert "stopped by --max-cost: 3 tasks not started" in err and "final: 1" in out
    assert "━" not in err  # no progress bar when stderr is not a TTY
