"""One long-lived thread spawns every sandbox worker.

A worker asks the kernel for ``SIGKILL`` when its parent dies (``PR_SET_PDEATHSIG``), and the
kernel's "parent" is the *thread* that forked it: a worker spawned by a short-lived thread (a
prestart helper, an executor thread, a thread that keeps a worker ready) would be killed when
that thread ends, however long its sandbox is meant to live. Spawning on this one daemon thread,
which lives as long as the process, makes the signal mean what it should: the worker dies with
the host process, never earlier. Only ``Popen`` runs here (a few ms); the handshake and the
context load stay on the thread that drives the sandbox, so sandboxes still start in parallel.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]


class _Spawner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _serve(self) -> None:
        while True:
            fn, done = self._jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed to the thread that asked
                done.set_exception(exc)

    def run(self, fn: Callable[[], T], undo: Callable[[T], None]) -> T:
        """``fn()`` on the spawner thread; ``undo(result)`` there if the caller stopped waiting
        (e.g. Ctrl-C while it waited), so nothing it made is left without an owner."""
        if threading.current_thread() is self._thread:
            return fn()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            # After a fork the child has no spawner thread (is_alive() is False there): start one.
            if self._thread is None or not self._thread.is_alive():
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, name="rlm-sandbox-spawner", daemon=True)
                self._thread.start()
            self._jobs.put((fn, done))
        try:
            return done.result()
        except BaseException:
            if not done.cancel():
                done.add_done_callback(lambda f: _undo(f, undo))
            raise


def _undo(done: concurrent.futures.Future[T], undo: Callable[[T], None]) -> None:
    if done.exception() is None:
        with contextlib.suppress(Exception):  # best effort: the caller is already gone
            undo(done.result())


_SPAWNER = _Spawner()
spawn = _SPAWNER.run
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: setattr(_SPAWNER, "_lock", threading.Lock()))
