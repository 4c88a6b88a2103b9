"""The sandbox's public value types and the host-side query handler protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox. Each is checked when the :class:`Sandbox` is created.

    * ``cpu_seconds``: CPU time per execution (an ``RLIMIT_CPU`` soft limit in the worker, and
      the host measures the worker's CPU time and kills it past the limit).
    * ``wall_seconds``: wall time per execution, not counting the time the host spends in the
      query handler; at the limit the host kills the worker's whole process group.
    * ``memory_bytes``: the worker's address space (``RLIMIT_AS``).
    * ``output_chars``: stdout+stderr kept per execution; the rest is cut with a marker.
    * ``file_size_bytes``: largest file the worker may write (``RLIMIT_FSIZE``).
    * ``max_queries``: ``llm_query``/``rlm_query`` sub-calls per execution (each prompt of a
      batch counts); further calls raise ``RuntimeError`` in the code.
    """

    cpu_seconds: float = 10.0
    wall_seconds: float = 30.0
    memory_bytes: int = 1 << 30
    output_chars: int = 20_000
    file_size_bytes: int = 16 << 20
    max_queries: int = 100

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number of seconds, got {value!r}")
        minimum = {"memory_bytes": 64 << 20, "output_chars": 1, "file_size_bytes": 0, "max_queries": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SandboxLimits.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class ExecutionResult:
    """What one :meth:`Sandbox.execute` produced.

    * ``output``: captured stdout+stderr, truncated to ``output_chars`` (output produced
      before a kill is kept as far as the worker reported it).
    * ``error``: a trimmed traceback, a ``killed: ...`` line, or ``None``.
    * ``killed``: ``None`` or ``"cpu"``, ``"wall"``, ``"memory"`` (the code hit
      ``memory_bytes``: a ``MemoryError`` or a death from it), ``"output"`` (the worker sent more
      than the host accepts, or output outside an execution), ``"crash"`` (the worker died or
      broke the protocol). Whenever ``killed`` is set the worker is gone: it is restarted on
      next use with the context reloaded, its other variables are lost, and ``error`` says so.
    * ``final``: ``str(x)`` of ``FINAL(x)``, or of the variable named by ``FINAL_VAR(name)``.
    * ``answer``: the REPL's ``answer`` dict (``{"content": ..., "ready": bool}``) when the
      code changed it.
    * ``duration_s``: wall time of the execution, as the host measured it.
    * ``queries``: sub-calls made during this execution (each prompt of a batch counts).
    """

    output: str
    error: str | None
    killed: str | None
    final: str | None
    answer: dict[str, Any] | None
    duration_s: float
    queries: int


class QueryHandler(Protocol):
    """Implemented by the host runtime. Called on the host thread that called ``execute()``.

    An exception raised here reaches the sandboxed code as ``RuntimeError(str(exc))``.
    """

    def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
        """One completion per prompt, in order (the handler may run them concurrently)."""
        ...

    def rlm_query(self, prompt: str, context: Any) -> str:
        """A recursive run over ``context`` (a JSON value) answering ``prompt``."""
        ...
