"""Start, limits that kill, restart, close: the worker's lifecycle as the host sees it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rlm_toolkit.sandbox import ExecutionResult, Sandbox, SandboxLimits, _landlock, _seccomp


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_start_is_idempotent_and_reports_a_level() -> None:
    box = Sandbox()
    assert box.level == "not started"
    box.start()
    pid = box._res.worker.pid  # type: ignore[union-attr]
    box.start()
    assert box._res.worker.pid == pid  # type: ignore[union-attr]
    layers = ["landlock"] if _landlock.abi_version() > 0 else []
    layers += ["seccomp"] if _seccomp.supported() else []
    layers += ["uid"] if os.geteuid() == 0 else []
    assert box.level == "+".join([*layers, "rlimits"])
    box.close()


def test_close_kills_the_process_group_and_removes_the_scratch_dir() -> None:
    box = Sandbox()
    box.start()
    worker = box._res.worker
    scratch = box._res.scratch
    assert worker is not None and scratch is not None and os.path.isdir(scratch)
    box.close()
    box.close()
    assert _gone(worker.pid)
    assert not os.path.exists(scratch)


def test_close_from_another_thread_ends_a_running_execution() -> None:
    """How a runtime cancels a run: close() while execute() blocks on another thread."""
    box = Sandbox(limits=SandboxLimits(wall_seconds=600, cpu_seconds=600))
    box.start()
    worker, scratch = box._res.worker, box._res.scratch
    assert worker is not None and scratch is not None
    results: list[ExecutionResult] = []
    runner = threading.Thread(target=lambda: results.append(box.execute("import time\ntime.sleep(3600)")))
    runner.start()
    deadline = time.monotonic() + 30
    while not box._busy and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="already running"):
        box.execute("1")
    box.close()
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert results[0].killed == "crash"
    assert results[0].error == "killed: the sandbox was closed during the execution"
    assert _gone(worker.pid)
    assert not os.path.exists(scratch)


def test_close_landing_before_the_code_is_sent_reports_the_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """close() from another thread right after execute() marked the box busy: the pre-checks
    then see the killed worker's end of file. That is the close, not leftover output (this
    window made the test above report ``killed="output"`` in 2 of 5 full runs)."""
    from rlm_toolkit.sandbox._process import WorkerProcess

    box = Sandbox()
    box.start()
    scratch = box._res.scratch
    assert scratch is not None
    real_pending = WorkerProcess.pending

    def close_lands_here(worker: WorkerProcess) -> bool:
        box.close()  # as the cancelling thread would, at this exact point
        deadline = time.monotonic() + 30
        while not real_pending(worker) and time.monotonic() < deadline:  # the EOF is readable
            time.sleep(0.01)
        return real_pending(worker)

    monkeypatch.setattr(WorkerProcess, "pending", close_lands_here)
    result = box.execute("1")
    assert (result.killed, result.error) == ("crash", "killed: the sandbox was closed during the execution")
    assert not os.path.exists(scratch)  # the busy thread released what close() deferred


def test_wall_limit_kills_and_keeps_earlier_output() -> None:
    with Sandbox(limits=SandboxLimits(wall_seconds=1, cpu_seconds=5)) as box:
        box.execute("v = 1")
        pid = box._res.worker.pid  # type: ignore[union-attr]
        result = box.execute("import time\nprint('started')\ntime.sleep(60)")
        assert result.killed == "wall"
        assert result.output == "started\n"
        assert result.error is not None and result.error.startswith("killed: wall time limit (1 s);")
        assert _gone(pid)
        again = box.execute("print('fresh')\nv")
        assert again.output == "fresh\n"
        assert again.error is not None and "NameError" in again.error


def test_cpu_limit_kills_a_busy_loop() -> None:
    with Sandbox(limits=SandboxLimits(cpu_seconds=1, wall_seconds=60)) as box:
        result = box.execute("while True:\n    pass")
        assert result.killed == "cpu"
        assert result.error is not None and result.error.startswith("killed: CPU time limit (1 s);")
        assert box.execute("1 + 1").output == "2\n"


def test_memory_bomb_hits_the_limit() -> None:
    with Sandbox(limits=SandboxLimits(memory_bytes=256 << 20)) as box:
        result = box.execute("hog = []\nwhile True:\n    hog.append(' ' * (1 << 20))")
        assert result.killed == "memory"
        assert result.error is not None and result.error.startswith(
            "MemoryError: the code exceeded the memory limit (256 MiB)"
        )
        assert box.execute("'alive'").output == "'alive'\n"


def test_worker_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-must-not-leak")
    with Sandbox() as box:
        result = box.execute("os = print.__self__.__import__('os')\nprint(sorted(os.environ))")
        # Python itself sets LC_CTYPE when it coerces the C locale to UTF-8; nothing else.
        assert result.output in ("[]\n", "['LC_CTYPE']\n")


def test_round_trip_is_fast_enough_to_be_a_repl() -> None:
    """Not a timed assert: just that many executions in a row keep working."""
    with Sandbox() as box:
        start = time.perf_counter()
        for i in range(50):
            assert box.execute(f"{i}").output == f"{i}\n"
        assert time.perf_counter() > start


HOST = """
import sys
sys.path.insert(0, {src!r})
from rlm_toolkit.sandbox import Sandbox, SandboxLimits
box = Sandbox(limits=SandboxLimits(cpu_seconds=300, wall_seconds=600))
box.start()
print(box._res.worker.pid, box._res.scratch, flush=True)
{end}
"""


@pytest.mark.parametrize(
    "end", ["pass", "box.execute('while True: pass')"], ids=["interpreter-exit", "host-killed"]
)
def test_worker_ends_with_the_host(end: str) -> None:
    """A host that exits without close(), or is killed outright while its worker is busy (so
    the worker never reads the pipe's end), leaves no worker behind."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    host = subprocess.Popen(
        [sys.executable, "-c", HOST.format(src=src, end=end)], stdout=subprocess.PIPE, text=True
    )
    assert host.stdout is not None
    pid_text, scratch = host.stdout.readline().split()
    pid = int(pid_text)
    if end != "pass":
        host.kill()  # SIGKILL: no finalizer runs; the parent-death signal must do it
    host.wait(timeout=60)
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)
    if end == "pass":
        assert not os.path.exists(scratch)  # removed at interpreter exit
    else:
        shutil.rmtree(scratch, ignore_errors=True)  # a killed host cannot clean up its temp dir
