"""``MetricsCallback``: counts, tokens, latency percentiles and cost, in process."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from rlm_toolkit.callbacks._base import BaseCallback
from rlm_toolkit.callbacks._extract import LLM_OPERATIONS
from rlm_toolkit.callbacks._types import LLMResponse

# Reentrant: a span may end on this thread while it holds the lock (a signal handler, a callback
# making an instrumented call), which ends up in ``on_llm_end`` here. Abandoned streams are ended
# by genai/_reaper.py, not inside the garbage collector, so this is defence in depth.
_class_lock = threading.RLock()


class _State:
    def __init__(self, max_samples: int) -> None:
        self.lock = threading.RLock()  # reentrant, like _class_lock
        self.calls = 0
        self.tokens = 0
        self.calls_without_usage = 0
        self.errors = 0
        self.retries = 0
        self.cost = 0.0
        self.latency_sum = 0.0
        self.latency_count = 0
        # Percentiles come from the most recent samples, so memory stays bounded in long runs.
        self.latencies: deque[float] = deque(maxlen=max_samples)
        self.by_model: dict[str, dict[str, int]] = {}


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0.0 for no samples."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n*q/100), at least 1
    return sorted_values[int(rank) - 1]


class MetricsCallback(BaseCallback):
    """Aggregates every LLM call it sees; read them with :meth:`get_metrics`. Thread-safe.

    A call counts once when it ends, successfully (``on_llm_end``) or not (``on_error``).
    Latency percentiles use the last ``max_latency_samples`` calls; the average uses all.
    ``total_tokens`` sums reported usage only: successful calls that reported none (a stream
    without ``include_usage``) are counted in ``calls_without_usage``, so a non-zero value there
    means ``total_tokens`` is a lower bound.
    """

    max_latency_samples = 10_000

    def __init__(self, max_latency_samples: int = 10_000) -> None:
        self.max_latency_samples = max_latency_samples
        self._metrics_state = _State(max_latency_samples)

    def _state(self) -> _State:
        state: _State | None = self.__dict__.get("_metrics_state")
        if state is None:  # a subclass skipped super().__init__()
            with _class_lock:
                state = self.__dict__.setdefault("_metrics_state", _State(self.max_latency_samples))
        return state

    def _count_call(self, state: _State, kwargs: dict[str, Any], tokens: int) -> None:
        state.calls += 1
        state.tokens += tokens
        duration = kwargs.get("duration_ms")
        if isinstance(duration, (int, float)):
            state.latencies.append(float(duration))
            state.latency_sum += float(duration)
            state.latency_count += 1
        model = kwargs.get("model") or "unknown"
        entry = state.by_model.setdefault(model, {"calls": 0, "tokens": 0})
        entry["calls"] += 1
        entry["tokens"] += tokens

    def on_llm_end(self, response: LLMResponse, **kwargs: Any) -> None:
        state = self._state()
        if not kwargs.get("model"):
            kwargs["model"] = response.model
        with state.lock:
            self._count_call(state, kwargs, response.usage.total_tokens)
            if not response.usage.known:
                state.calls_without_usage += 1
            if response.cost is not None:
                state.cost += response.cost

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        state = self._state()
        with state.lock:
            state.errors += 1
            if kwargs.get("operation") in LLM_OPERATIONS:
                self._count_call(state, kwargs, 0)

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        state = self._state()
        with state.lock:
            state.retries += 1

    def get_metrics(self) -> dict[str, Any]:
        """A snapshot: ``total_calls``, ``total_tokens``, ``calls_without_usage``, ``errors``,
        ``retries``, ``avg_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``, ``by_model``
        (``{model: {"calls", "tokens"}}``) and ``total_cost`` (USD, priced calls only)."""
        state = self._state()
        with state.lock:
            samples = sorted(state.latencies)
            return {
                "total_calls": state.calls,
                "total_tokens": state.tokens,
                "calls_without_usage": state.calls_without_usage,
                "errors": state.errors,
                "retries": state.retries,
                "avg_latency_ms": state.latency_sum / state.latency_count if state.latency_count else 0.0,
                "p50_latency_ms": _percentile(samples, 50),
                "p95_latency_ms": _percentile(samples, 95),
                "by_model": {model: dict(entry) for model, entry in state.by_model.items()},
                "total_cost": state.cost,
            }

    def reset(self) -> None:
        with _class_lock:
            self.__dict__["_metrics_state"] = _State(self.max_latency_samples)
