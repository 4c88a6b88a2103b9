"""The issue's "done when" on the command line: 20 offline tasks with one command, Ctrl-C,
resume, the same table, and 20 traces linked to one eval span; OOLONG-style counting tasks
scored right offline; the eval-wide cost and time budgets."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time

import pytest

from rlm_toolkit.evals import linked_traces, needle_tasks
from rlm_toolkit.exporters import read_spans_jsonl
from rlm_toolkit.testing import OFFLINE_API_KEY, OpenAIServer

from .helpers import cli, cli_env, read_lines


def _table(stdout: str) -> str:
    """The summary table without the latency rows (the only lines that vary between runs)."""
    return "\n".join(line for line in stdout.splitlines() if "latency" not in line)


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return pathlib.Path(needle_tasks(str(tmp_path_factory.mktemp("twenty")), count=20, chars=10_000))


def test_interrupt_resume_same_table_and_twenty_linked_traces(twenty: pathlib.Path) -> None:
    cwd = twenty.parent
    results = cwd / "niah.results.jsonl"
    proc = cli(twenty.name, "-j", "2", cwd=cwd)
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

    resumed = cli(twenty.name, "-j", "2", cwd=cwd)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed: {finished} tasks already in niah.results.jsonl, {20 - finished} run now" in err
    rows = [json.loads(line) for line in read_lines(results)]
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20  # none ran twice
    assert "100.0% (20 scored)" in out and "final: 20" in out

    again = cli(twenty.name, cwd=cwd)  # nothing left to run: the same table
    out2, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and _table(out2) == _table(out)

    spans = read_spans_jsonl(cwd / "niah.traces.jsonl")
    linked = linked_traces(spans)
    first = rows[0]["eval_traceparent"].split("-")
    assert sorted(linked[(first[1], first[2])]) == sorted(r["trace_id"] for r in rows)
    assert "20 task traces linked" in err
    # Runs the Ctrl-C stopped mid-task were ended and flushed; they are named, not counted.
    everything = linked_traces(spans, include_stopped=True)[(first[1], first[2])]
    stopped = len(everything) - 20
    assert (f"{stopped} runs stopped mid-task, not counted" in err) == (stopped > 0)


def test_max_cost_stops_new_tasks(tmp_path: pathlib.Path) -> None:
    tasks = needle_tasks(str(tmp_path), count=4, chars=10_000)
    proc = cli(tasks, "-j", "1", "--max-cost", "0.0001", "-o", "out.jsonl", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(read_lines(tmp_path / "out.jsonl")) == 1
    assert "stopped by --max-cost: 3 tasks not started" in err and "final: 1" in out
    assert "━" not in err  # no progress bar when stderr is not a TTY


def test_oolong_aggregation_scores_right_offline(tmp_path: pathlib.Path) -> None:
    """A new user's two commands over OOLONG-style counting tasks: the offline model counts each
    chunk of records in a sub-call and adds the counts up, so every answer is the true count."""
    gen = cli("generate", "oolong", "tasks", "--count", "4", "--records", "600", "--seed", "5", cwd=tmp_path)
    out, err = gen.communicate(timeout=60)
    assert gen.returncode == 0, err
    assert out.strip() == os.path.join("tasks", "oolong.jsonl")
    proc = cli(out.strip(), "-j", "2", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "100.0% (4 scored)" in out and "final: 4" in out
    rows = [json.loads(line) for line in read_lines(tmp_path / "tasks" / "oolong.results.jsonl")]
    assert len(rows) == 4
    for row in rows:
        assert row["answer"] == row["expected"] and row["score"] == 1.0, row
        assert row["subcalls"] == 3  # 600 records, 250 a sub-call
    # The expected counts differ between tasks: a constant answer could not pass them all.
    assert len({r["expected"] for r in rows}) > 1


def test_max_seconds_stops_new_tasks_and_the_running_one_finishes(tmp_path: pathlib.Path) -> None:
    tasks = needle_tasks(str(tmp_path), count=3, chars=10_000)
    with OpenAIServer() as server:
        server.queue_fault("slow", delay=3.0)  # the first task's first call outlasts the budget
        env = cli_env(OPENAI_API_KEY=OFFLINE_API_KEY, OPENAI_BASE_URL=server.base_url)
        proc = cli(tasks, "-j", "1", "--max-seconds", "1.5", "-o", "out.jsonl", cwd=tmp_path, env=env)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in read_lines(tmp_path / "out.jsonl")]
    assert [r["status"] for r in rows] == ["final"] and rows[0]["score"] == 1.0
    assert "stopped by --max-seconds: 2 tasks not started" in err
    assert "final: 1, not_started: 2" in out

    resumed = cli(tasks, "-j", "1", "-o", "out.jsonl", cwd=tmp_path)  # a rerun starts the rest
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resumed: 1 tasks already in out.jsonl, 2 run now" in err and "final: 3" in out
