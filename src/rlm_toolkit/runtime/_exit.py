"""Recursive runs still open when the process ends: their spans end and their sandboxes go.

A recursive run holds spans (its ``invoke_agent`` span, nested runs' spans, the
``execute_tool`` span of the code running now) and sandbox processes with scratch dirs. When
the process ends mid-run -- ``sys.exit`` or an unhandled exception in another thread, or a
SIGTERM/SIGHUP under ``rlm-instrument`` (whose handler ends open streams before it flushes) --
nothing unwinds the run's ``with`` blocks. Each root run therefore registers an
:class:`OpenRun` with the stream reaper (``genai._reaper.track``), on the same exit paths the
instrumentation covers for streams: at exit it ends every open span, innermost first (as
``error`` with the exception ending the process, else with :class:`RunAbandoned`), and closes
every sandbox (the worker's process group is killed and its scratch dir removed).

A plain SIGTERM/SIGHUP (no ``rlm-instrument``, no handler of the app's) would kill the process
with nothing unwound: ``_terminate`` covers it during runs on the main thread, and an app with
a handler of its own calls :func:`end_open_runs` (``rlm_toolkit.end_open_runs``) from it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import _reaper
from rlm_toolkit.runtime import _terminate


class RunAbandoned(Exception):
    """The process ended while the run was still in progress (the spans' ``error.type``)."""


EndFn = Callable[[BaseException], None]


class OpenRun:
    """What one root run has open right now: span enders and sandboxes, by registration order."""

    def __init__(self) -> None:
        # Reentrant: a signal handler (end_open_runs) may interrupt the main thread inside it.
        self._lock = threading.RLock()
        self._ids = itertools.count()
        self._open: dict[int, EndFn] = {}
        #: The SDK providers this run's spans and events go to (flushed by end_open_runs).
        self.providers: dict[int, Any] = {}

    @contextlib.contextmanager
    def tracked(self) -> Iterator[OpenRun]:
        """Register with the exit hooks (and, on the main thread, a SIGTERM/SIGHUP left at its
        default) for the duration of the root run."""
        _reaper.track(self)
        _ROOTS.add(self)
        try:
            with _terminate.guarded(end_open_runs):
                yield self
        finally:
            _ROOTS.discard(self)
            _reaper.untrack(self)

    @contextlib.contextmanager
    def holding(self, end: EndFn) -> Iterator[None]:
        """While the body runs, ``end(error)`` is called if the process ends."""
        with self._lock:
            key = next(self._ids)
            self._open[key] = end
        try:
            yield
        finally:
            with self._lock:
                self._open.pop(key, None)

    def span(self, span: Any) -> contextlib.AbstractContextManager[None]:
        """Hold a ``RunSpan`` or ``ToolStep`` (anything with an idempotent ``fail(error)``)."""
        handler = getattr(span, "handler", None)  # a RunSpan's TelemetryHandler
        if handler is not None:
            for provider in (handler.sdk_tracer_provider(), handler.sdk_logger_provider()):
                if provider is not None:
                    self.providers[id(provider)] = provider
        return self.holding(span.fail)

    def sandbox(self, sandbox: Any) -> contextlib.AbstractContextManager[None]:
        # kill(), not close(): close() leaves the cleanup to a thread blocked in execute(),
        # which will not run again once the process is ending.
        return self.holding(lambda _error: sandbox.kill())

    def at_exit(self, exc: BaseException | None) -> None:
        """End everything still open, innermost (latest) first; each at most once."""
        error = exc if exc is not None else RunAbandoned("the process ended during the run")
        with self._lock:
            enders = [self._open.pop(key) for key in sorted(self._open, reverse=True)]
        for end in enders:
            try:
                end(error)
            except Exception as failure:
                with contextlib.suppress(Exception):  # strict mode re-raises; the rest still end
                    contain("runtime: end open run at exit", failure)


#: Root runs in progress (set add/discard are atomic: no lock a signal handler could meet).
_ROOTS: set[OpenRun] = set()


def end_open_runs(timeout: float = _terminate.FLUSH_S) -> None:
    """End every recursive run and ``RLM`` stream still open in this process, then flush.

    For an app's own SIGTERM handler, just before the process exits (an ``RLM`` does this by
    itself only while a run is in progress on the main thread and the signal is at its default
    disposition; ``rlm-instrument`` always does). Open ``invoke_agent`` and ``execute_tool``
    spans end as errors (``error.type`` ``RunAbandoned``), open streams as ``abandoned``, each
    sandbox worker is killed and its scratch dir removed; then the tracer and logger providers
    of those runs, and the global ones, are flushed within ``timeout`` seconds in all. A run
    still executing on another thread fails afterwards (its sandbox is gone). Idempotent; safe
    from a signal handler on the main thread; never raises for our own failures.
    """
    providers: dict[int, Any] = {}
    for run in list(_ROOTS):  # list(set) copies in C, without a thread switch
        providers.update(run.providers)
    try:
        from opentelemetry import _logs, trace

        for provider in (trace.get_tracer_provider(), _logs.get_logger_provider()):
            providers.setdefault(id(provider), provider)
        _reaper.end_open(None)
    except Exception as exc:
        contain("runtime: end open runs", exc)
    deadline = time.monotonic() + max(timeout, 0.0)
    for provider in providers.values():
        flush = getattr(provider, "force_flush", None)
        left = deadline - time.monotonic()
        if flush is None or left <= 0:
            continue
        try:
            flush(max(int(left * 1000), 1))
        except Exception as exc:
            contain("runtime: flush at exit", exc)
