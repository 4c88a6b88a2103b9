"""Limits of a recursive run (:class:`RLMConfig`) and the tracker that enforces them (:class:`Budget`).

One :class:`Budget` is shared by the whole recursion tree: the root run, every ``llm_query``
sub-call and every nested ``rlm_query`` run add their usage and cost to it, so a limit holds for
the tree, not per level. Cost is estimated from the reported usage with the same price table
(``rlm_toolkit.pricing``) that puts ``gen_ai.usage.cost`` on each LLM span, so the budget and the
spans show the same numbers. The tracker is thread-safe: ``llm_query_batched`` sub-calls report
from worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rlm_toolkit.runtime._result import ModelUsage, Usage
from rlm_toolkit.runtime._strategy import Completion
from rlm_toolkit.sandbox import SandboxLimits

# Statuses of a finished run (``RLMResult.status``).
STATUS_FINAL = "final"  # the model gave its answer (FINAL, FINAL_VAR or answer["ready"])
STATUS_MAX_ITERATIONS = "max_iterations"
STATUS_BUDGET = "budget"  # tokens, cost or sub-calls used up
STATUS_TIMEOUT = "timeout"  # the run's wall time is used up
STATUS_ERROR = "error"  # the run failed (raise_on_error=False)


@dataclass(frozen=True)
class RLMConfig:
    """Limits and knobs of a recursive run (``RLM(config=RLMConfig(...))``).

    ``None`` means no limit. Token, cost, sub-call and wall-time limits hold for the whole
    recursion tree (root, sub-calls and nested runs together). A run that reaches one stops
    cleanly with that status and the partial transcript in its result.
    """

    #: Root-model turns per run (each nested ``rlm_query`` run has the same limit of its own).
    max_iterations: int = 20
    #: ``llm_query`` / ``rlm_query`` sub-calls over the whole tree.
    max_subcalls: int | None = 500
    #: How deep ``rlm_query`` may recurse: 0 = never (``rlm_query`` is a plain sub-call),
    #: 1 = the root's ``rlm_query`` is a recursive run whose own ``rlm_query`` is plain, ...
    max_depth: int = 1
    #: Input + output tokens over the tree, as each call reports them, priced or not (an
    #: unpriced call costs the cost budget nothing but counts here). A call that reports no
    #: usage stops the run (status ``budget``): counted as zero it would pass unseen.
    max_tokens: int | None = None
    #: Estimated cost in USD over the tree: the cost each LLM span carries. A call of the RLM's
    #: own model or ``sub_model`` that has no price (e.g. on a non-OpenAI host) costs the budget
    #: nothing and shows as unpriced (``RLMResult.by_model[m].cost is None``); a call of another
    #: model the code named (see ``allowed_models``) with no price stops the run (status
    #: ``budget``), so code cannot hide spending under a cost budget. Each sub-call
    #: reserves the largest cost of one call seen so far before it is sent (see :class:`Budget`).
    max_cost_usd: float | None = None
    #: Wall-clock seconds for the whole run.
    max_seconds: float | None = None
    #: Model for ``llm_query`` sub-calls (default: the RLM's model).
    sub_model: str | None = None
    #: Models the code may name in ``llm_query(p, model=...)`` besides the RLM's model and
    #: ``sub_model`` (the default allows only those two); another name is an error in the code.
    allowed_models: tuple[str, ...] = ()
    #: Replies with neither code nor a final answer that get a corrective message before the
    #: run gives up with status ``max_iterations``; each such reply also counts as an iteration.
    max_corrections: int = 3
    #: REPL output (characters) fed back to the model per execution.
    max_output_chars: int = 10_000
    #: Characters of the root prompt (all messages) per call: past it, the REPL output of the
    #: oldest turns is cut first (the system prompt, the question and the latest turn stay).
    max_prompt_chars: int = 400_000
    #: Concurrent sub-calls of one ``llm_query_batched``.
    batch_parallelism: int = 8
    #: Sandbox limits per execution (CPU, wall time, memory, output, sub-calls per execution);
    #: None = the sandbox's defaults.
    sandbox_limits: SandboxLimits | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_iterations",
            "max_depth",
            "max_corrections",
            "max_output_chars",
            "max_prompt_chars",
            "batch_parallelism",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (0 if name == "max_depth" else 1)
            ):
                low = 0 if name == "max_depth" else 1
                raise ValueError(f"RLMConfig {name} must be an int >= {low}, got {value!r}")
        if self.sandbox_limits is not None and not isinstance(self.sandbox_limits, SandboxLimits):
            raise ValueError(
                "RLMConfig sandbox_limits must be a rlm_toolkit.sandbox.SandboxLimits, "
                f"got {type(self.sandbox_limits).__qualname__}"
            )
        if self.sub_model is not None and (not isinstance(self.sub_model, str) or not self.sub_model):
            raise ValueError(f"RLMConfig sub_model must be a model name, got {self.sub_model!r}")
        if not isinstance(self.allowed_models, tuple) or not all(
            isinstance(m, str) and m for m in self.allowed_models
        ):
            raise ValueError(
                f"RLMConfig allowed_models must be a tuple of model names, got {self.allowed_models!r}"
            )
        for name in ("max_subcalls", "max_tokens", "max_cost_usd", "max_seconds"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"RLMConfig {name} must be a number >= 0 or None, got {value!r}")


class BudgetExceeded(RuntimeError):
    """A tree-wide limit is used up; ``status`` is ``budget`` or ``timeout``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
        known=a.known and b.known,
    )


class Budget:
    """Usage, cost, sub-calls and time of one run tree, checked against an :class:`RLMConfig`."""

    def __init__(
        self, config: RLMConfig, clock: Any = time.monotonic, own_models: frozenset[str] = frozenset()
    ) -> None:
        self.config = config
        #: The models the user configured (the RLM's model and sub_model): unpriced, they are
        #: shown as unpriced; any other unpriced model stops a cost budget.
        self.own_models = own_models
        self._clock = clock
        self._deadline = None if config.max_seconds is None else clock() + config.max_seconds
        self._lock = threading.Lock()
        self.tokens = 0
        self.cost = 0.0
        self.priced = False  # at least one call had a price
        self.subcalls = 0
        self.depth = 0
        self._by_model: dict[str, ModelUsage] = {}
        #: Cost reserved by sub-calls in flight, and the largest cost of one call seen so far.
        self.reserved = 0.0
        self.largest_call = 0.0
        #: Set when a limit was hit (first one wins): the run ends with this status.
        self.exhausted: BudgetExceeded | None = None

    def seconds_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock()

    def record(self, completion: Completion, model: str, cost: float | None) -> None:
        """Count one finished LLM call (root or sub-call)."""
        name = completion.model or model
        with self._lock:
            entry = self._by_model.get(name)
            if entry is None:
                entry = ModelUsage(usage=Usage(known=True))
            self._by_model[name] = ModelUsage(
                calls=entry.calls + 1,
                usage=_add(entry.usage, completion.usage),
                cost=entry.cost if cost is None else (entry.cost or 0.0) + cost,
            )
            self.tokens += completion.usage.total_tokens
            if not completion.usage.known and self.config.max_tokens is not None and self.exhausted is None:
                # Counted as zero, this call's tokens would pass the token budget unseen: stop.
                self.exhausted = BudgetExceeded(
                    STATUS_BUDGET,
                    f"token budget: model {name!r} reported no token usage, so max_tokens cannot be counted",
                )
            if cost is not None:
                self.cost += cost
                self.priced = True
                self.largest_call = max(self.largest_call, cost)
            elif (
                self.config.max_cost_usd is not None
                and self.exhausted is None
                and model not in self.own_models
            ):
                # Unpriced spending would not count against the cost budget: stop instead.
                self.exhausted = BudgetExceeded(
                    STATUS_BUDGET, f"cost budget: model {name!r} has no price, so its cost cannot be counted"
                )

    def reserve(self) -> float:
        """Before sending a sub-call under a cost budget: reserve the largest cost of one call
        seen so far, or raise :class:`BudgetExceeded` if spent + reserved + that would pass the
        budget. Returns the amount to :meth:`release` once the call is recorded."""
        limit = self.config.max_cost_usd
        if limit is None:
            return 0.0
        with self._lock:
            share = self.largest_call
            if self.reserved > 0 and self.cost + self.reserved + share > limit:
                self._exhaust(
                    STATUS_BUDGET,
                    f"cost budget used up (${self.cost:.6f} spent and ${self.reserved:.6f} in flight "
                    f"of ${limit})",
                )
            self.reserved += share
            return share

    def release(self, share: float) -> None:
        if share:
            with self._lock:
                self.reserved = max(self.reserved - share, 0.0)

    def reach(self, depth: int) -> None:
        with self._lock:
            self.depth = max(self.depth, depth)

    def take_subcalls(self, n: int) -> None:
        """Reserve ``n`` sub-calls, or raise :class:`BudgetExceeded` (and remember it)."""
        limit = self.config.max_subcalls
        with self._lock:
            if limit is not None and self.subcalls + n > limit:
                self._exhaust(STATUS_BUDGET, f"sub-call limit reached ({limit} per run)")
            self.subcalls += n
        self.check()

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if a limit is used up (tokens, cost, wall time)."""
        config = self.config
        with self._lock:
            if self.exhausted is not None:
                raise BudgetExceeded(self.exhausted.status, str(self.exhausted))
            if config.max_tokens is not None and self.tokens >= config.max_tokens:
                self._exhaust(STATUS_BUDGET, f"token budget used up ({self.tokens} of {config.max_tokens})")
            if config.max_cost_usd is not None and self.cost >= config.max_cost_usd:
                self._exhaust(
                    STATUS_BUDGET, f"cost budget used up (${self.cost:.6f} of ${config.max_cost_usd})"
                )
            if self._deadline is not None and self._clock() >= self._deadline:
                self._exhaust(STATUS_TIMEOUT, f"run time limit reached ({config.max_seconds} s)")

    def time_up(self, message: str) -> None:
        """A wait outlived the deadline: end the run with status ``timeout`` (raises)."""
        with self._lock:
            if self.exhausted is None:
                self._exhaust(
                    STATUS_TIMEOUT, f"run time limit reached ({self.config.max_seconds} s): {message}"
                )
            exhausted = self.exhausted
        assert exhausted is not None  # set above, or by an earlier limit
        raise BudgetExceeded(exhausted.status, str(exhausted))

    def _exhaust(self, status: str, message: str) -> None:
        self.exhausted = BudgetExceeded(status, message)
        raise self.exhausted

    def snapshot_by_model(self) -> dict[str, ModelUsage]:
        with self._lock:
            return dict(self._by_model)

    def totals(self) -> tuple[Usage, float, bool]:
        """(usage, cost, priced) so far; :meth:`since` turns two of these into a subtree's share."""
        with self._lock:
            total = Usage(known=True)
            for entry in self._by_model.values():
                total = _add(total, entry.usage)
            return total, self.cost, self.priced

    def since(self, before: tuple[Usage, float, bool]) -> tuple[Usage, float, bool]:
        """Usage and cost added after ``before`` was taken (a nested run's subtree; all for the root)."""
        usage, cost, priced = self.totals()
        base = before[0]
        delta = Usage(
            prompt_tokens=usage.prompt_tokens - base.prompt_tokens,
            completion_tokens=usage.completion_tokens - base.completion_tokens,
            total_tokens=usage.total_tokens - base.total_tokens,
            cached_tokens=usage.cached_tokens - base.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens - base.reasoning_tokens,
            known=usage.known,
        )
        return delta, cost - before[1], priced
