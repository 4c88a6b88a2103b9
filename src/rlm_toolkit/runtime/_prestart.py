"""A run's sandbox starts (and loads its context) while the first root model call is in flight.

The first root turn never needs the REPL, so a run does not wait for the worker before its
first model request: :class:`Prestart` starts it on a helper thread, and the run waits for it
only where the strategy first executes code (:meth:`Prestart.wait`). A run that ends before --
an answer without code, a budget stop, an error, a cancel, Ctrl-C -- does not wait for the start:
:meth:`Prestart.close` kills the starting worker and removes its scratch dir (the sandbox defers
that release to the starting thread, which ends at once). The sandbox is still driven by one
thread at a time: the helper's work has ended when ``wait()`` returns. The worker is a fresh one,
started for this run and closed with it (``ReadySandboxes`` may have started it earlier; it ran
nothing). The helper thread may end before the worker: workers are spawned on the sandbox's
process-long spawner thread, which their parent-death signal follows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rlm_toolkit.sandbox import Sandbox


def start_with(sandbox: Sandbox, context: Any, after: Callable[[], None] | None = None) -> str:
    """Start ``sandbox`` holding ``context`` (after ``after()``: a ready sandbox's own start
    ends first); its isolation level."""
    if after is not None:
        after()
    # Start first: the spawn and the worker's start are waits, while encoding a big context holds
    # the GIL -- done first, it would delay the run's first request on the other thread.
    sandbox.start()
    sandbox.set_context(context)
    return sandbox.level


class Prestart:
    """:func:`start_with` on a helper thread; :meth:`wait` for it, :meth:`close` to end it all."""

    def __init__(self, sandbox: Sandbox, context: Any, after: Callable[[], None] | None = None) -> None:
        self.sandbox = sandbox
        self.waited = False  # whether wait() was called (the run needed the REPL)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._start, args=(context, after), name="rlm-sandbox-start", daemon=True
        )
        self._thread.start()

    def _start(self, context: Any, after: Callable[[], None] | None) -> None:
        try:
            start_with(self.sandbox, context, after)
        except BaseException as exc:  # handed to the run's thread by wait(), or dropped by close()
            self._error = exc

    def wait(self) -> Sandbox:
        """The started sandbox holding the context; re-raises what starting it raised."""
        self._thread.join()
        self.waited = True
        error, self._error = self._error, None
        if error is not None:
            raise error
        return self.sandbox

    def close(self) -> None:
        """Close the sandbox (a start in progress is cut short, never raised), and wait until
        the helper thread has released what it made."""
        try:
            self.sandbox.close()
        finally:
            self._thread.join()
