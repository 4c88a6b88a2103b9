"""``ReadySandboxes``: one fresh sandbox kept started, for hosts that run code again and again."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from rlm_toolkit.sandbox._sandbox import Sandbox
from rlm_toolkit.sandbox._types import SandboxLimits

#: Seconds ``close()`` waits for a sandbox still starting to end.
CLOSE_WAIT_S = 5.0


class _Starting:
    """A sandbox whose worker starts on its own thread (done: ``thread`` has ended)."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.box = Sandbox(limits=limits)
        self.thread = threading.Thread(target=self._start, name="rlm-sandbox-ready", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        # A failed start is left for the taker: its own start() retries and reports the error.
        with contextlib.suppress(RuntimeError):
            self.box.start()

    def end(self) -> None:
        self.box.close()  # while it starts: kills the worker; its thread then releases the rest
        self.thread.join(CLOSE_WAIT_S)


class ReadySandboxes:
    """Keeps one fresh :class:`Sandbox` started ahead of need, so a host that runs code again
    and again (an eval worker, an RLM serving many runs) never waits for a worker to start.

    :meth:`take` hands out a sandbox whose worker started in the background and has run nothing;
    each is handed out once and never comes back (the taker closes it: a worker that ran someone's
    code is never reused), and the next one starts at once. :meth:`close` (or leaving a ``with``
    block) ends the one kept ready; so do garbage collection of this object and the process's
    exit. Thread-safe.
    """

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise TypeError(f"ReadySandboxes(limits=...) takes a SandboxLimits, got {type(limits).__name__}")
        self.limits = limits or SandboxLimits()
        self._lock = threading.Lock()
        self._kept: list[_Starting] = [_Starting(self.limits)]  # one at most; a list the finalizer shares
        self._closed = False
        self._finalizer = weakref.finalize(self, _end_all, self._kept)

    def take(self) -> Sandbox:
        """A started sandbox that has run nothing (waits if the kept one is still starting).

        Raises ``RuntimeError`` after :meth:`close`, or when the worker cannot start."""
        box, thread = self._take()
        thread.join()
        box.start()  # no-op when the background start succeeded; else retries and reports
        return box

    def _take(self) -> tuple[Sandbox, threading.Thread]:
        """The kept sandbox and the thread starting it (join it before driving the sandbox);
        the next one starts now."""
        with self._lock:
            if self._closed:
                raise RuntimeError("these ReadySandboxes are closed; create new ones")
            taken = self._kept.pop() if self._kept else _Starting(self.limits)
            self._kept.append(_Starting(self.limits))
        return taken.box, taken.thread

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """End the sandbox kept ready (its worker and scratch dir); idempotent. Sandboxes
        already taken are their takers' to close."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def __enter__(self) -> ReadySandboxes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end_all(kept: list[Any]) -> None:
    while kept:
        kept.pop().end()
