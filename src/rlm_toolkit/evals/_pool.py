"""The local backend: worker processes (``spawn`` or ``forkserver``, never ``fork``), one task
at a time each over a pipe; a worker that dies fails its task and is replaced."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from rlm_toolkit.evals._spec import EvalSpec
from rlm_toolkit.evals._traces import TaskStopped


def _serve(conn: Connection) -> None:
    """A worker's loop: (spec, task, carrier) in, results line out; None ends it.

    Ctrl-C is the runner's alone: the worker leaves the runner's process group (a terminal
    sends SIGINT to its foreground group; the sandboxes have their own sessions already) and
    ignores SIGINT; it was born with SIGINT blocked (see :class:`_Worker`), so none arrives
    before that. The runner stops a busy worker with SIGTERM, which unwinds the run (its spans
    end, its sandbox closes) and flushes the telemetry before the worker exits.
    """
    with contextlib.suppress(OSError):  # already done by the runner, or not allowed: SIG_IGN holds
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    from rlm_toolkit.evals._worker import run_task, shutdown_worker

    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            conn.send(run_task(*job))
    finally:
        shutdown_worker()


def _leave(signum: int, frame: Any) -> None:
    """SIGTERM in a worker: unwind the task in progress (once; a second SIGTERM kills)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise TaskStopped(128 + signum)


class _Worker:
    __slots__ = ("conn", "process", "task_id")

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True, name="rlm-eval-worker")
        # Born with SIGINT blocked (the mask survives fork and exec): a Ctrl-C while it boots
        # stays pending until _serve ignores it. The runner's main thread unblocks it at once.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
            if self.process.pid is not None:
                with contextlib.suppress(OSError):  # EACCES once the child has exec'd: it does it itself
                    os.setpgid(self.process.pid, self.process.pid)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child.close()
        self.task_id: str | None = None


class ProcessPool:
    """``workers`` processes; :meth:`submit` to an idle one, :meth:`poll` for finished rows."""

    def __init__(self, spec: EvalSpec, workers: int, start_method: str = "spawn") -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
        self.spec = spec
        self.capacity = workers
        self._ctx = multiprocessing.get_context(start_method)
        self._workers = [_Worker(self._ctx) for _ in range(workers)]

    @property
    def running(self) -> int:
        return sum(1 for w in self._workers if w.task_id is not None)

    def pids(self) -> list[int]:
        """The worker processes' ids (busy ones first)."""
        ordered = sorted(self._workers, key=lambda w: w.task_id is None)
        return [w.process.pid for w in ordered if w.process.pid is not None]

    def submit(self, task: Mapping[str, Any], carriers: Sequence[Mapping[str, str]]) -> None:
        worker = next(w for w in self._workers if w.task_id is None)
        if not worker.process.is_alive():  # died while idle: nothing lost, start another
            self._replace(worker)
            worker = next(w for w in self._workers if w.task_id is None)
        worker.task_id = str(task["id"])
        worker.conn.send((self.spec, dict(task), [dict(c) for c in carriers]))

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        busy = [w for w in self._workers if w.task_id is not None]
        if not busy:
            return []
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        rows: list[dict[str, Any]] = []
        for worker in busy:
            row: dict[str, Any] | None = None
            if worker.conn in ready:
                try:
                    row = worker.conn.recv()
                except (EOFError, OSError):
                    row = None
            if row is None and (worker.conn in ready or worker.process.sentinel in ready):
                worker.process.join(5)
                row = _died(worker)
                self._replace(worker)
            if row is not None:
                worker.task_id = None
                rows.append(row)
        return rows

    def _replace(self, dead: _Worker) -> None:
        fresh = _Worker(self._ctx)
        self._workers[self._workers.index(dead)] = fresh
        dead.conn.close()

    def close(self, wait_for_exit: bool = True) -> None:
        """Stop the workers: ask idle ones to leave (they flush telemetry), terminate busy ones
        (SIGTERM: the run unwinds and flushes), kill any still there after 15 s (5 after Ctrl-C)."""
        for worker in self._workers:
            if worker.task_id is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except (OSError, ValueError):
                    worker.process.terminate()
            else:
                worker.process.terminate()
        # After Ctrl-C a busy worker gets a few seconds to unwind its run and flush, then dies.
        deadline = time.monotonic() + (15 if wait_for_exit else 5)
        for worker in self._workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()


def _died(worker: _Worker) -> dict[str, Any]:
    code = worker.process.exitcode
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    return {
        "id": worker.task_id,
        "status": "worker_died",
        "answer": "",
        "error": f"worker process {worker.process.pid} {how} while running this task",
        "score": 0.0,
        "label": "fail",
    }
