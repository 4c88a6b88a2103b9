"""The Ray backend: one Ray core task per eval task (``pip install rlm-toolkit[ray]``).

Trace context travels in the task's arguments (the W3C carrier), not through Ray's tracing
hook. Workers read ``OPENAI_API_KEY`` from their own environment; the driver forwards only its
``OTEL_*`` (no headers) and ``RLM_*`` settings and ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from rlm_toolkit.evals._spec import EvalSpec

_FORWARD_PREFIXES = ("OTEL_", "RLM_")


def forwarded_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The driver's telemetry settings for Ray workers (never keys or auth headers)."""
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if k.startswith(_FORWARD_PREFIXES) and "HEADERS" not in k}
    if env.get("OPENAI_BASE_URL"):
        out["OPENAI_BASE_URL"] = env["OPENAI_BASE_URL"]
    return out


def _remote_run(
    spec: EvalSpec, task: Mapping[str, Any], carriers: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    from rlm_toolkit.evals._worker import run_task

    return run_task(spec, task, carriers)


class RayBackend:
    """Eval tasks as Ray core tasks on the cluster at ``address`` (``auto``: the running one;
    an already initialised Ray in this process is used as is)."""

    def __init__(self, spec: EvalSpec, address: str, concurrency: int) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("--ray needs Ray: pip install 'rlm-toolkit[ray]'") from None
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": forwarded_env()})
        self.spec = spec
        self.capacity = concurrency
        self._remote = ray.remote(max_retries=0, num_cpus=1)(_remote_run)
        self._spec_ref = ray.put(spec)
        self._pending: dict[Any, str] = {}

    @property
    def running(self) -> int:
        return len(self._pending)

    def submit(self, task: Mapping[str, Any], carriers: Sequence[Mapping[str, str]]) -> None:
        ref = self._remote.remote(self._spec_ref, dict(task), [dict(c) for c in carriers])
        self._pending[ref] = str(task["id"])

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        if not self._pending:
            return []
        ready, _ = self._ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        rows: list[dict[str, Any]] = []
        for ref in ready:
            task_id = self._pending.pop(ref)
            try:
                rows.append(self._ray.get(ref))
            except Exception as exc:
                died = isinstance(exc, (self._ray.exceptions.WorkerCrashedError,))
                rows.append(
                    {
                        "id": task_id,
                        "status": "worker_died" if died else "error",
                        "answer": "",
                        "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                        "score": 0.0,
                        "label": "fail",
                    }
                )
        return rows

    def close(self, wait_for_exit: bool = True) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns:
            self._ray.shutdown()
