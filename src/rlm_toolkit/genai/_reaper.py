"""Ending abandoned streams outside the garbage collector.

A stream proxy garbage-collected unfinished must still end its span ("abandoned"). Its
``weakref.finalize`` callback runs inside whatever code triggered the collection -- possibly a
thread holding a non-reentrant lock inside the OpenTelemetry SDK (a span processor's condition,
a metric aggregation lock) that ending a span takes again: a deadlock no lock of ours can
prevent. So the finalizer does only lock-free work (:func:`abandon`): it reads the clock and
appends to a ``collections.deque`` (``append``/``popleft`` are atomic and take no lock). A daemon
"reaper" thread, started lazily once per process (again in a forked child), drains the deque
every :data:`PERIOD_S` seconds and ends each stream with the captured end time, outside any
GC context. The deque is also drained when the interpreter exits, before ``atexit`` handlers
(where providers shut down) run, so an abandoned stream's span is not lost at exit.

Streams still open at exit (referenced from a global, or from the traceback of the crash that
is ending the process) are tracked too (:func:`track`): the exit hook ends them before the
providers flush, as ``error`` with the exception in flight when the process dies of an
unhandled exception, else as ``abandoned``. A signal handler that flushes calls
:func:`end_open` itself (``atexit`` does not run then).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from rlm_toolkit._safety import contain

#: Ends one abandoned stream: ``(end_time_ns, end_perf_ns)`` -- the wall clock (``time.time_ns``,
#: for the span) and the monotonic clock (``time.perf_counter_ns``, for durations) at abandonment.
EndFn = Callable[[int, int], None]

PERIOD_S: Final = 0.2


class Open(Protocol):
    """A tracked stream: :func:`end_open` calls ``at_exit`` once the process is ending."""

    def at_exit(self, exc: BaseException | None) -> None: ...


_PENDING: deque[tuple[EndFn, int, int]] = deque()
#: Streams not ended yet (set add/discard are atomic under the GIL: no lock, so the exit path
#: and stream ends on other threads cannot deadlock on it).
_OPEN: set[Open] = set()
_started = False
_drain_lock = threading.Lock()  # one drain at a time (reaper vs exit); never taken by the GC path


def abandon(end: EndFn) -> None:
    """The finalizer side: lock-free, allocation-light, never raises into the collector."""
    _PENDING.append((end, time.time_ns(), time.perf_counter_ns()))


def track(stream: Open) -> None:
    """Remember an open stream until :func:`untrack` (its end) or the process's exit."""
    _OPEN.add(stream)


def untrack(stream: Open) -> None:
    _OPEN.discard(stream)


def exception_in_flight() -> BaseException | None:
    """The unhandled exception ending the process, once the interpreter has printed it
    (``sys.last_exc`` on 3.12+, ``sys.last_value`` before; ``SystemExit`` never sets them)."""
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return exc if isinstance(exc, BaseException) else None


def end_open(exc: BaseException | None) -> None:
    """End every stream that is still open, before the providers flush: with ``exc`` (the
    exception ending the process) as ``error``; otherwise queued abandoned streams with their
    abandonment time, then the rest as ``abandoned`` now. Each ends exactly once."""
    if exc is not None:
        _end_each(exc)
    drain()
    _end_each(None)


def _end_each(exc: BaseException | None) -> None:
    for stream in list(_OPEN):  # list(set) copies in C, without a thread switch
        _OPEN.discard(stream)
        try:
            stream.at_exit(exc)
        except Exception as error:
            with contextlib.suppress(Exception):  # strict mode re-raises; the others still end
                contain("end open stream at exit", error)


def ensure_started() -> None:
    """Start the reaper thread if this process has none. Call from normal code (stream
    creation), never from a finalizer: starting a thread takes locks."""
    global _started
    if _started:
        return
    _started = True
    try:
        threading.Thread(target=_run, name="rlm-toolkit-reaper", daemon=True).start()
    except Exception as exc:  # e.g. at interpreter shutdown: exit drain still runs
        _started = False
        contain("start stream reaper", exc)


def end_abandoned_streams() -> int:
    """End now, in the calling thread, every stream that was garbage-collected unfinished and
    is waiting for the reaper thread (which does this every 0.2 s); returns how many ended.

    For tests and shutdown code that must see those spans ended before they read or flush
    them. Never raises for a stream (each end is contained)."""
    return drain()


def drain() -> int:
    """End every pending abandoned stream now, in the calling thread; returns how many.

    The reaper calls it periodically; tests may call it to end abandoned streams without
    waiting for the reaper.
    """
    count = 0
    with _drain_lock:
        while True:
            try:
                end, end_time, end_perf = _PENDING.popleft()
            except IndexError:
                return count
            count += 1
            try:
                end(end_time, end_perf)
            except Exception as exc:
                with contextlib.suppress(Exception):  # strict mode re-raises; the reaper survives
                    contain("end abandoned stream", exc)


def _run() -> None:
    while True:
        time.sleep(PERIOD_S)
        if _PENDING:
            drain()


def _at_exit() -> None:
    if _started:
        gc.collect()  # streams abandoned in reference cycles: their finalizers queue them now
    end_open(exception_in_flight())


def _after_fork_in_child() -> None:
    global _started, _drain_lock
    _started = False  # the parent's reaper thread does not exist here
    _drain_lock = threading.Lock()  # it may have been held by the parent's reaper at fork
    _PENDING.clear()  # the parent ends these; ending them here too would export them twice
    _OPEN.clear()


def _register_exit() -> None:
    # threading's exit hooks run before atexit handlers (where the SDK providers shut down).
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_at_exit)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_at_exit)


_register_exit()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
