"""SIGTERM/SIGHUP during a recursive run in a process that has no handler for them.

Python leaves SIGTERM and SIGHUP at the system default: the process dies at once, without
``atexit``, so a run's open ``invoke_agent``/``execute_tool`` spans and its sandbox scratch dirs
were lost. A library may not take these signals from the app, so this module does the least
that keeps a run's data (the README's "Exit and SIGTERM"):

* only while a recursive run is in progress on the main thread (sync, or asyncio on the main
  thread) of a process that is not a multiprocessing worker, and only for a signal still at its
  default disposition (``SIG_DFL``): an app's own handler, ``SIG_IGN``, asyncio's
  ``add_signal_handler`` and ``rlm-instrument``'s handler are left alone, and the disposition goes back to ``SIG_DFL`` when the last such run ends;
* the handler ends the open runs (:func:`end_open_runs`: spans as ``RunAbandoned``, sandboxes
  killed, scratch dirs removed, providers flushed within :data:`FLUSH_S`), then restores
  ``SIG_DFL`` and sends the signal again: the process dies of it, as it would have, with the
  same exit status (``-15``/``143`` for SIGTERM) and still without ``atexit``.

An app that handles SIGTERM itself (or runs RLMs on other threads) calls
:func:`end_open_runs` from its handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final

#: Seconds the handler may spend flushing the providers before the process dies.
FLUSH_S: Final = 5.0
#: Signals whose default action kills the process without running ``atexit``.
SIGNALS: Final = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_lock = threading.Lock()  # never taken by the handler (it runs on the main thread, maybe inside)
_runs = 0  # main-thread runs in progress
_installed: list[int] = []  # the signals whose handler is ours
_end_open: Callable[[float], None] | None = None


@contextlib.contextmanager
def guarded(end_open: Callable[[float], None]) -> Iterator[None]:
    """While the body (a root run) runs on the main thread, a SIGTERM/SIGHUP that would kill
    the process at once first calls ``end_open(FLUSH_S)``."""
    if threading.current_thread() is not threading.main_thread() or _in_pool_worker():
        yield  # signal.signal() works on the main thread only: the app's handler must do it
        return
    global _runs, _end_open
    with _lock:
        if _runs == 0:
            _end_open = end_open
            _install()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                _restore()


def _in_pool_worker() -> bool:
    """A multiprocessing child: ``Pool.terminate()`` SIGTERMs its workers, and one that spends
    time flushing lets the pool start replacements it never signals (``rlm-instrument`` resets
    these workers to the default too)."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    end_open = _end_open
    try:
        if end_open is not None:
            end_open(FLUSH_S)
    finally:
        # Die of the signal, as the process would have without us.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1.0)  # delivered at once in practice; never return into the run
        os._exit(128 + signum)


def _install() -> None:
    for signum in SIGNALS:
        # Not ours to take: an app's handler, SIG_IGN, or a handler installed outside Python.
        with contextlib.suppress(ValueError, OSError, TypeError):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)
                _installed.append(signum)


def _restore() -> None:
    for signum in _installed:
        with contextlib.suppress(ValueError, OSError, TypeError):
            if signal.getsignal(signum) is _on_signal:  # the app may have installed its own since
                signal.signal(signum, signal.SIG_DFL)
    _installed.clear()
