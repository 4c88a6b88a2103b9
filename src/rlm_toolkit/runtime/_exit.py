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
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import _reaper


class RunAbandoned(Exception):
    """The process ended while the run was still in progress (the spans' ``error.type``)."""


EndFn = Callable[[BaseException], None]


class OpenRun:
    """What one root run has open right now: span enders and sandboxes, by registration order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._open: dict[int, EndFn] = {}

    @contextlib.contextmanager
    def tracked(self) -> Iterator[OpenRun]:
        """Register with the exit hooks for the duration of the root run."""
        _reaper.track(self)
        try:
            yield self
        finally:
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
