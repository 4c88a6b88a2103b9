"""One chat call, plain or streamed, sync or async, reduced to a :class:`Completion`.

The chunk and response handling is shared; only the I/O differs between sync and async.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from rlm_toolkit.genai import stream_state_of
from rlm_toolkit.genai._context import REPORTED
from rlm_toolkit.runtime._provider import ACreate, Create
from rlm_toolkit.runtime._result import Usage
from rlm_toolkit.runtime._strategy import Completion

#: Extra arguments of a streamed call: the last chunk carries the usage of the whole call.
STREAM_ARGS: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}


def usage_of(raw: Any) -> Usage:
    if raw is None:
        return Usage(known=False)  # not reported: zeros that are not measurements
    prompt = getattr(raw, "prompt_tokens", None) or 0
    completion = getattr(raw, "completion_tokens", None) or 0
    total = getattr(raw, "total_tokens", None) or prompt + completion
    cached = getattr(getattr(raw, "prompt_tokens_details", None), "cached_tokens", None) or 0
    reasoning = getattr(getattr(raw, "completion_tokens_details", None), "reasoning_tokens", None) or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _span_cost(chunks: Any = None) -> float | None:
    """The cost the call's LLM span carries: the invocation the provider's wrapper reported
    in this context (or, for a stream, the one its proxy ends)."""
    if chunks is not None:
        state = stream_state_of(chunks)
        if state is not None:
            return state.inv.cost  # type: ignore[no-any-return]
    inv = REPORTED.get()
    return inv.cost if inv is not None else None


def from_response(response: Any) -> Completion:
    choices = getattr(response, "choices", None) or []
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    return Completion(
        content=getattr(message, "content", None) or "",
        usage=usage_of(getattr(response, "usage", None)),
        finish_reason=getattr(first, "finish_reason", None),
        model=getattr(response, "model", None),
        cost=_span_cost(),
    )


class ChunkAccumulator:
    """Collects a chat stream's text, finish reason, model and usage, chunk by chunk."""

    __slots__ = ("finish_reason", "model", "parts", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage = Usage(known=False)  # until the usage chunk arrives

    def add(self, chunk: Any) -> str | None:
        """Record ``chunk``; return its text delta, if any."""
        self.model = getattr(chunk, "model", None) or self.model
        raw_usage = getattr(chunk, "usage", None)
        if raw_usage is not None:
            self.usage = usage_of(raw_usage)
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            return None
        choice = choices[0]
        if getattr(choice, "finish_reason", None):
            self.finish_reason = choice.finish_reason
        delta = getattr(getattr(choice, "delta", None), "content", None)
        if delta:
            self.parts.append(delta)
            return str(delta)
        return None

    def completion(self, chunks: Any = None) -> Completion:
        """What the stream said; ``chunks``: the stream (for the cost its span carries)."""
        return Completion(
            content="".join(self.parts),
            usage=self.usage,
            finish_reason=self.finish_reason,
            model=self.model,
            cost=_span_cost(chunks),
        )


def complete(create: Create, model: str, messages: list[dict[str, Any]], stream: bool) -> Completion:
    """One chat call through ``create`` (a :class:`ModelProvider`'s, reporting through the
    run's handler), reduced to a :class:`Completion`."""
    REPORTED.set(None)
    if not stream:
        return from_response(create(model=model, messages=messages))
    acc = ChunkAccumulator()
    chunks: Iterator[Any] = create(model=model, messages=messages, **STREAM_ARGS)
    with chunks:  # type: ignore[attr-defined]
        for chunk in chunks:
            acc.add(chunk)
    return acc.completion(chunks)


async def acomplete(create: ACreate, model: str, messages: list[dict[str, Any]], stream: bool) -> Completion:
    """:func:`complete` with an async ``create``."""
    REPORTED.set(None)
    if not stream:
        return from_response(await create(model=model, messages=messages))
    acc = ChunkAccumulator()
    chunks: AsyncIterator[Any] = await create(model=model, messages=messages, **STREAM_ARGS)
    async with chunks:  # type: ignore[attr-defined]
        async for chunk in chunks:
            acc.add(chunk)
    return acc.completion(chunks)
