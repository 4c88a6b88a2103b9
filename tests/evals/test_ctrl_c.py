"""Ctrl-C reaches the runner only: the workers (and their sandboxes) are in process groups of
their own, the runner stops them (a busy one unwinds its run and flushes it), nothing is left."""

from __future__ import annotations

import os
import pathlib
import signal
import time

from rlm_toolkit.evals import linked_traces, needle_tasks
from rlm_toolkit.exporters import read_spans_jsonl
from rlm_toolkit.testing import OFFLINE_API_KEY, OpenAIServer

from .helpers import cli, cli_env, read_lines


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of ``pid``, or None once it is gone (or a zombie)."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def _descendants(root: int) -> dict[int, int]:
    """Every live process below ``root``: pid -> process group."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            stats[int(entry)] = stat
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, pgid) in stats.items():
            if ppid == parent and pid not in found:
                found[pid] = pgid
                frontier.append(pid)
    return found


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_ctrl_c_reaches_the_runner_only_and_it_stops_the_workers(tmp_path: pathlib.Path) -> None:
    tasks = needle_tasks(str(tmp_path), count=12, chars=10_000)
    with OpenAIServer() as server:
        # The first task's first model call hangs for a minute: at Ctrl-C one worker is busy
        # with a live sandbox, and only a clean stop ends the eval before the call would.
        server.queue_fault("slow", delay=60.0)
        env = cli_env(OPENAI_API_KEY=OFFLINE_API_KEY, OPENAI_BASE_URL=server.base_url)
        proc = cli(tasks, "-j", "2", "-o", "out.jsonl", cwd=tmp_path, env=env)
        seen: dict[int, int] = {}
        try:
            deadline = time.monotonic() + 120
            sandboxes: list[int] = []
            while time.monotonic() < deadline and proc.poll() is None:
                seen.update(_descendants(proc.pid))
                sandboxes = [p for p in seen if "_worker.py" in _cmdline(p)]
                if len(read_lines(tmp_path / "out.jsonl")) >= 2 and sandboxes:
                    break
                time.sleep(0.05)
            assert sandboxes, "no sandbox seen"
            workers = [p for p in seen if "spawn_main" in _cmdline(p)]
            assert len(workers) == 2
            # A terminal's Ctrl-C goes to its foreground process group: the runner's only.
            assert proc.pid not in {seen[p] for p in workers + sandboxes}
            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            stopped = time.monotonic() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 130, err
    finished = len(read_lines(tmp_path / "out.jsonl"))
    assert f"interrupted: {finished} of 12 tasks finished" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert stopped < 30  # well before the hung call would have returned
    deadline = time.monotonic() + 10
    while any(_stat(p) is not None for p in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in seen if _stat(p) is not None] == []  # no worker, sandbox or tracker left
    # The busy workers unwound their runs: ended as TaskStopped and flushed, linked to the
    # eval span but not counted among its task traces (those tasks have no results line).
    spans = read_spans_jsonl(tmp_path / "out.traces.jsonl")
    runs = [s for s in spans if s.parent is None and s.name.startswith("invoke_agent")]
    stopped = [s for s in runs if (s.attributes or {}).get("error.type") == "TaskStopped"]
    assert len(runs) == finished + len(stopped) and 1 <= len(stopped) <= 2
    assert all(s.end_time for s in stopped)
    linked = linked_traces(spans)
    assert [len(v) for v in linked.values()] == [finished]
    assert [len(v) for v in linked_traces(spans, include_stopped=True).values()] == [len(runs)]
