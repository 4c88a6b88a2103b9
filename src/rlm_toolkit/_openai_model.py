"""The ``openai`` SDK as the runtime's provider-neutral model interface.

``instrumentation/openai/_runtime.OPENAI`` makes a run's chat-completions call through the
instrumentation's own wrapper, built for the run's handler (one span per call); this module
reduces what it returns -- a ``ChatCompletion`` or a chunk stream -- to what the runtime needs
(``runtime/_provider``): a :class:`Completion`, or a :class:`OpenAIDeltas` stream of text
deltas. Kept out of ``instrumentation/openai`` (which knows no runtime type) and out of
``runtime/`` (which knows no SDK shape).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rlm_toolkit._deltas import ProxiedDeltas
from rlm_toolkit.genai._context import REPORTED
from rlm_toolkit.runtime._cut import cut_retry_delay, is_transport_error
from rlm_toolkit.runtime._options import check_openai_credentials
from rlm_toolkit.runtime._result import Usage
from rlm_toolkit.runtime._strategy import Completion

if TYPE_CHECKING:
    from rlm_toolkit.genai import TelemetryHandler
    from rlm_toolkit.instrumentation.openai._runtime import OpenAIProvider

#: Extra arguments of a streamed call: the last chunk carries the usage of the whole call.
STREAM_ARGS: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}

# The instrumentation's provider (its wrappers, the stream proxies and ``wrapt``, the
# ``opentelemetry-instrumentation`` base and ``packaging``) is imported when a run first makes a
# call, not when an ``RLM`` is built: :func:`_provider` binds it once.
_OPENAI: OpenAIProvider | None = None


def _provider() -> OpenAIProvider:
    """``instrumentation/openai/_runtime.OPENAI``, imported on first use."""
    global _OPENAI
    provider = _OPENAI
    if provider is None:
        from rlm_toolkit.instrumentation.openai._runtime import OPENAI

        _OPENAI = provider = OPENAI
    return provider


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


def _reported_cost() -> float | None:
    """The cost of the call the provider's wrapper reported in this context."""
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
        cost=_reported_cost(),
    )


class _Chunks:
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


class OpenAIDeltas(ProxiedDeltas):
    """The text deltas of a chat stream (the instrumentation's proxy, which ends its span and
    delivers token events); ``completion()`` after it ended. Sync and async alike."""

    __slots__ = ("_acc",)

    def __init__(self, chunks: Any) -> None:
        super().__init__(chunks)
        self._acc = _Chunks()

    def __next__(self) -> str:
        if self._it is None:
            self._it = iter(self._stream)
        add = self._acc.add
        for chunk in self._it:
            delta = add(chunk)
            if delta is not None:
                return delta
        raise StopIteration

    async def __anext__(self) -> str:
        if self._it is None:
            self._it = self._stream.__aiter__()
        add = self._acc.add
        async for chunk in self._it:
            delta = add(chunk)
            if delta is not None:
                return delta
        raise StopAsyncIteration

    def completion(self) -> Completion:
        acc = self._acc
        state = self._state()
        return Completion(
            content="".join(acc.parts),
            usage=acc.usage,
            finish_reason=acc.finish_reason,
            model=acc.model,
            cost=state.inv.cost if state is not None else _reported_cost(),
        )


class _Call:
    """A run's :class:`~rlm_toolkit.runtime._provider.ModelCall` over an ``openai`` client."""

    __slots__ = ("_client", "_create")

    def __init__(self, create: Any, client: Any) -> None:
        self._create = create
        self._client = client

    def __call__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any:
        REPORTED.set(None)
        extra = {"timeout": timeout} if timeout is not None else {}
        if not stream:
            return from_response(self._create(model=model, messages=messages, **extra))
        return OpenAIDeltas(self._create(model=model, messages=messages, **STREAM_ARGS, **extra))

    def stream_retry(self, exc: BaseException, retries: int) -> float | None:
        return cut_retry_delay(self._client, retries) if is_transport_error(exc) else None


class _ACall(_Call):
    __slots__ = ()

    async def __call__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any:
        REPORTED.set(None)
        extra = {"timeout": timeout} if timeout is not None else {}
        if not stream:
            return from_response(await self._create(model=model, messages=messages, **extra))
        return OpenAIDeltas(await self._create(model=model, messages=messages, **STREAM_ARGS, **extra))


class OpenAIModels:
    """:class:`~rlm_toolkit.runtime._provider.ModelProvider` of the ``openai`` SDK."""

    name = "openai"

    def create(self, handler: TelemetryHandler, client: Any) -> _Call:
        return _Call(_provider().create(handler, client), client)

    def acreate(self, handler: TelemetryHandler, client: Any) -> _ACall:
        return _ACall(_provider().acreate(handler, client), client)

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """An ``openai.OpenAI`` retrying by ``policy``; :class:`RLMCredentialsError` (one line,
        before anything starts) when no key reaches it."""
        check_openai_credentials(options, os.environ)
        return _provider().sync_client(policy, options)

    def async_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """:meth:`sync_client` for ``openai.AsyncOpenAI``."""
        check_openai_credentials(options, os.environ)
        return _provider().async_client(policy, options)


#: The one provider of this SDK.
OPENAI_MODELS = OpenAIModels()
