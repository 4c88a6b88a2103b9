"""Drive a strategy's plan with a sync or async LLM call; turn its completions into a result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rlm_toolkit.runtime._result import RLMResult, Usage
from rlm_toolkit.runtime._strategy import Completion, LLMRequest, Plan


def drive(plan: Plan, call: Callable[[LLMRequest], Completion]) -> tuple[str, list[Completion]]:
    completions: list[Completion] = []
    request = next(plan)
    while True:
        completion = call(request)
        completions.append(completion)
        try:
            request = plan.send(completion)
        except StopIteration as stop:
            return stop.value, completions


async def adrive(
    plan: Plan, call: Callable[[LLMRequest], Awaitable[Completion]]
) -> tuple[str, list[Completion]]:
    completions: list[Completion] = []
    request = next(plan)
    while True:
        completion = await call(request)
        completions.append(completion)
        try:
            request = plan.send(completion)
        except StopIteration as stop:
            return stop.value, completions


def cost_of(completion: Completion, model: str) -> float | None:
    """The USD cost of one call: the very figure its LLM span carries (``gen_ai.usage.cost``,
    priced once, by the handler, knowing the provider). None -- unpriced, counted as nothing
    and shown as such in ``RLMResult.by_model`` -- for a model without a known price at that
    provider, or a call no span reported (instrumentation suppressed)."""
    return completion.cost


def total_usage(completions: list[Completion]) -> Usage:
    if not completions:
        return Usage(known=False)
    return Usage(
        prompt_tokens=sum(c.usage.prompt_tokens for c in completions),
        completion_tokens=sum(c.usage.completion_tokens for c in completions),
        total_tokens=sum(c.usage.total_tokens for c in completions),
        cached_tokens=sum(c.usage.cached_tokens for c in completions),
        reasoning_tokens=sum(c.usage.reasoning_tokens for c in completions),
        # Known only if every call reported it: otherwise the sums are not the run's usage.
        known=all(c.usage.known for c in completions),
    )


def build_result(model: str, answer: str, completions: list[Completion], trace_id: str | None) -> RLMResult:
    costs = [c for c in (cost_of(comp, model) for comp in completions) if c is not None]
    last = completions[-1] if completions else None
    return RLMResult(
        answer=answer,
        usage=total_usage(completions),
        iterations=len(completions),
        cost=sum(costs) if costs else None,
        model=(last.model if last is not None else None) or model,
        finish_reason=last.finish_reason if last is not None else None,
        trace_id=trace_id,
    )


def failed_result(model: str, error: BaseException, trace_id: str | None) -> RLMResult:
    return RLMResult(
        answer="", model=model, trace_id=trace_id, error=error, usage=Usage(known=False), status="error"
    )
