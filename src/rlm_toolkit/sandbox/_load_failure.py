"""The message when a sandbox worker fails to load a context: what was seen, and its fix.

Before, every failure advised raising ``memory_bytes``, also when the machine's out-of-memory
killer, a CPU limit or a slow load was the cause (where a larger limit does not help).
"""

from __future__ import annotations

import signal

from rlm_toolkit.sandbox._process import WorkerProcess
from rlm_toolkit.sandbox._types import SandboxLimits


def _seconds(value: float) -> str:
    return f"{value:g}"


def load_failure(
    worker: WorkerProcess, exc: Exception, mib: int, limits: SandboxLimits, timeout: float
) -> str:
    """What was seen when ``worker`` failed to load a context of about ``mib`` MiB, and the fix
    that fits it (only a MemoryError under ``memory_bytes`` is fixed by raising it)."""
    head = f"the sandbox worker could not load a context of about {mib} MiB"
    if isinstance(exc, TimeoutError):
        return f"{head}: still loading after {_seconds(timeout)} s; pass a smaller context or split it"
    status = worker.exit_status(timeout=1.0)  # it is gone (EOF, broken pipe) or going
    if status is None:
        return f"{head}: it stopped answering ({exc}); pass a smaller context or split it"
    if status in (1, 3):  # an uncaught MemoryError; 3 is the worker's EXIT_MEMORY
        return (
            f"{head}: it exited with status {status}, as after a MemoryError under its memory limit"
            f" ({limits.memory_bytes >> 20} MiB); raise SandboxLimits.memory_bytes"
        )
    if status == -signal.SIGXCPU:
        return (
            f"{head}: it hit its CPU time limit ({_seconds(limits.cpu_seconds)} s) decoding it;"
            " raise SandboxLimits.cpu_seconds"
        )
    if status == -signal.SIGKILL:
        return (
            f"{head}: it was killed by SIGKILL, not by its own limits (most likely the kernel's"
            " out-of-memory killer: the machine ran out of memory); free memory or pass a smaller"
            " context, a larger memory_bytes will not help"
        )
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:  # a real-time signal has no name
            name = "an unnamed signal"
        return f"{head}: it was killed by signal {-status} ({name})"
    return f"{head}: it exited with status {status}"
