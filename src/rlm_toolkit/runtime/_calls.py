"""One model call, plain or streamed, sync or async, reduced to a :class:`Completion`.

The provider (``runtime/_provider.ModelCall``) makes the call and reduces its SDK's shapes;
this module only drives it. A streamed call cut while its reply arrives (a dropped
connection, an in-band overloaded error) is retried here, as the SDK retries the same fault
on a non-streamed call before any byte arrives (#22.9): bounded by the client's retry policy
(``ModelCall.stream_retry``) and by the time left, each attempt its own span (the cut one
failed, the next one carrying ``rlm.request.attempts``), the cut attempts' usage and cost
added to the returned completion.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rlm_toolkit.runtime._bounds import MIN_WAIT_S
from rlm_toolkit.runtime._provider import AsyncModelCall, ModelCall
from rlm_toolkit.runtime._result import Usage
from rlm_toolkit.runtime._strategy import Completion


def _limit(deadline: float | None) -> dict[str, Any]:
    if deadline is None:
        return {}
    return {"timeout": max(deadline - time.monotonic(), MIN_WAIT_S)}


def _retry_delay(
    create: ModelCall | AsyncModelCall, exc: BaseException, retries: int, deadline: float | None
) -> float | None:
    """The delay before retrying a cut stream, or None (not retryable, retries or time spent)."""
    if not isinstance(exc, Exception):
        return None  # KeyboardInterrupt, cancellation: never retried
    delay = create.stream_retry(exc, retries)
    if delay is None:
        return None
    if deadline is not None and time.monotonic() + delay + MIN_WAIT_S >= deadline:
        return None
    return delay


def with_spent(completion: Completion, spent: list[Completion]) -> Completion:
    """``completion`` with the usage and cost of the cut attempts before it added."""
    if not spent:
        return completion
    every = [*spent, completion]
    costs = [c.cost for c in every if c.cost is not None]
    usage = Usage(
        prompt_tokens=sum(c.usage.prompt_tokens for c in every),
        completion_tokens=sum(c.usage.completion_tokens for c in every),
        total_tokens=sum(c.usage.total_tokens for c in every),
        cached_tokens=sum(c.usage.cached_tokens for c in every),
        reasoning_tokens=sum(c.usage.reasoning_tokens for c in every),
        known=all(c.usage.known for c in every),
    )
    return Completion(
        content=completion.content,
        usage=usage,
        finish_reason=completion.finish_reason,
        model=completion.model,
        cost=sum(costs) if costs else None,
    )


def complete(
    create: ModelCall,
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    timeout: float | None = None,
) -> Completion:
    """One call through ``create`` (a :class:`ModelProvider`'s, reporting through the run's
    handler), reduced to a :class:`Completion`; ``timeout``: the seconds it may take in all."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if not stream:
        result: Completion = create(model=model, messages=messages, **_limit(deadline))
        return result
    spent: list[Completion] = []
    while True:
        deltas = create(model=model, messages=messages, stream=True, **_limit(deadline))
        if spent:
            deltas.retried(len(spent) + 1)
        try:
            with deltas:
                for _ in deltas:
                    pass
        except Exception as exc:
            delay = _retry_delay(create, exc, len(spent), deadline)
            if delay is None:
                raise
            spent.append(deltas.completion())
            time.sleep(delay)
            continue
        return with_spent(deltas.completion(), spent)


async def acomplete(
    create: AsyncModelCall,
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    timeout: float | None = None,
) -> Completion:
    """:func:`complete` with an async ``create``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if not stream:
        result: Completion = await create(model=model, messages=messages, **_limit(deadline))
        return result
    spent: list[Completion] = []
    while True:
        deltas = await create(model=model, messages=messages, stream=True, **_limit(deadline))
        if spent:
            deltas.retried(len(spent) + 1)
        try:
            async with deltas:
                async for _ in deltas:
                    pass
        except Exception as exc:
            delay = _retry_delay(create, exc, len(spent), deadline)
            if delay is None:
                raise
            spent.append(deltas.completion())
            await asyncio.sleep(delay)
            continue
        return with_spent(deltas.completion(), spent)
