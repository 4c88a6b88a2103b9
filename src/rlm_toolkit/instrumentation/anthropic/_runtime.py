"""The ``anthropic`` SDK as the runtime's model provider (``runtime/_provider.ModelProvider``).

A run's model call is one ``messages.create`` (``stream=True`` when a consumer wants tokens)
made through the same wrapper a process-wide instrumentation installs (``_wrappers``), built
for the run's handler and applied to this one call, as the openai side does: one inference
span (``chat {model}``), request/response attributes, usage, cost, content under the handler's
policy, token events for ``on_token``, errors (``error.type`` and ``rlm.error.provider_type``)
exactly as for the app's own instrumented calls. When the SDK is instrumented too, its wrapper
sees the running invocation and steps aside; the SDK's own tracing is gated off for the call
(``_hooks.sdk_span_gate``, installed by :func:`~._targets.ensure_hooks`): one span per call.

Retries: the SDK's retry loop, with the run's :class:`~rlm_toolkit.runtime.RetryPolicy`
applied by a client subclass (``_runtime_client``) that reports each retry through the
instrumentation's retry hooks. What is left here is the reduction of what the wrapper returns
-- a ``Message`` or an event stream -- to the runtime's :class:`Completion` /
``DeltaStream``, and the runtime's messages (chat-shaped, ``system`` first) as ``system=`` and
alternating ``user``/``assistant`` turns; ``max_tokens`` (required by the API) is the
provider's option.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit._deltas import ProxiedDeltas
from rlm_toolkit.genai import Invocation, TelemetryHandler
from rlm_toolkit.genai._context import REPORTED
from rlm_toolkit.instrumentation._stainless._calls import HandlerWrappers
from rlm_toolkit.instrumentation.anthropic._response import finish_reason
from rlm_toolkit.instrumentation.anthropic._runtime_client import DEFAULT_MAX_TOKENS, built
from rlm_toolkit.instrumentation.anthropic._specs import MESSAGES_CREATE
from rlm_toolkit.instrumentation.anthropic._targets import ensure_hooks
from rlm_toolkit.instrumentation.anthropic._wrappers import Wrapper, async_call, sync_call
from rlm_toolkit.runtime._cut import cut_retry_delay, is_transport_error
from rlm_toolkit.runtime._options import check_anthropic_client
from rlm_toolkit.runtime._result import Usage
from rlm_toolkit.runtime._strategy import Completion

PROVIDER = GA.GenAiProviderNameValues.ANTHROPIC.value
#: In-band stream errors the SDK retries when they come as an HTTP status (500, 529).
_RETRYABLE_IN_BAND = frozenset({"overloaded_error", "api_error"})

# -- messages -----------------------------------------------------------------------------------


def to_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The runtime's chat messages as the Messages API wants them: ``system`` apart (all system
    messages, joined), then turns that alternate and start with ``user`` (adjacent turns of one
    role are joined; a leading assistant turn gets an empty user turn before it)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        text = content if isinstance(content, str) else "" if content is None else str(content)
        if role in ("system", "developer"):
            system.append(text)
            continue
        role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(continue)"})
    return ("\n\n".join(system) if system else None), turns


# -- what a call returns, as the runtime needs it --------------------------------------------------


def _usage(inv: Invocation | None) -> Usage:
    if inv is None or inv.input_tokens is None:
        return Usage(known=False)
    prompt = inv.input_tokens
    output = inv.output_tokens or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output,
        total_tokens=prompt + output,
        cached_tokens=inv.cached_input_tokens or 0,
        reasoning_tokens=inv.reasoning_tokens or 0,
    )


def _from_message(response: Any) -> Completion:
    """A non-streamed reply (the wrapper reported it and ended its span) as a :class:`Completion`."""
    inv = REPORTED.get()
    blocks = getattr(response, "content", None) or ()
    stop = getattr(response, "stop_reason", None)
    return Completion(
        content="".join(str(block.text) for block in blocks if getattr(block, "type", None) == "text"),
        usage=_usage(inv),
        finish_reason=finish_reason(stop) if stop else None,
        model=getattr(response, "model", None),
        cost=inv.cost if inv is not None else None,
    )


class AnthropicDeltas(ProxiedDeltas):
    """The text deltas of a ``messages.create(stream=True)``, through the instrumentation's
    stream proxy (which ends the span once on every exit path and delivers token events); its
    ``MessageEvents`` reduction gives the finish reason and model. Sync and async."""

    __slots__ = ("_parts",)

    def __init__(self, proxy: Any) -> None:
        super().__init__(proxy)
        self._parts: list[str] = []

    @staticmethod
    def _text(event: Any) -> str | None:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            return str(event.delta.text)
        return None

    def __next__(self) -> str:
        if self._it is None:
            self._it = iter(self._stream)
        for event in self._it:
            text = self._text(event)
            if text:
                self._parts.append(text)
                return text
        raise StopIteration

    async def __anext__(self) -> str:
        if self._it is None:
            self._it = self._stream.__aiter__()
        async for event in self._it:
            text = self._text(event)
            if text:
                self._parts.append(text)
                return text
        raise StopAsyncIteration

    def completion(self) -> Completion:
        state = self._state()
        if state is None:  # not reported (the wrapper stepped aside): the text alone
            return Completion("".join(self._parts), Usage(known=False), None, None)
        inv, events = state.inv, state.handler
        stop = getattr(events, "stop_reason", None)
        return Completion(
            content="".join(self._parts),
            usage=_usage(inv) if inv.ended else Usage(known=False),
            finish_reason=finish_reason(stop) if stop else None,
            model=getattr(events, "model", None),
            cost=inv.cost,
        )


# -- the provider ---------------------------------------------------------------------------------


def _kwargs(
    model: str, messages: list[dict[str, Any]], max_tokens: int, stream: bool, timeout: float | None
) -> dict[str, Any]:
    system, turns = to_messages(messages)
    kwargs: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": max_tokens}
    if system is not None:
        kwargs["system"] = system
    if stream:
        kwargs["stream"] = True
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


class _SyncCall:
    """A run's ``ModelCall`` over an ``anthropic.Anthropic`` client: its ``messages.create``
    through the instrumentation's wrapper built for the run's handler."""

    __slots__ = ("_client", "_max_tokens", "_wrapper")

    def __init__(self, wrapper: Wrapper, client: Any) -> None:
        self._wrapper = wrapper
        self._client = client
        self._max_tokens: int = getattr(client, "_rlm_max_tokens", DEFAULT_MAX_TOKENS)

    def stream_retry(self, exc: BaseException, retries: int) -> float | None:
        retryable = is_transport_error(exc) or getattr(exc, "type", None) in _RETRYABLE_IN_BAND
        return cut_retry_delay(self._client, retries) if retryable else None

    def __call__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any:
        REPORTED.set(None)
        resource = self._client.messages
        result = self._wrapper(
            resource.create, resource, (), _kwargs(model, messages, self._max_tokens, stream, timeout)
        )
        return AnthropicDeltas(result) if stream else _from_message(result)


class _AsyncCall(_SyncCall):
    """A run's ``ModelCall`` over an ``anthropic.AsyncAnthropic`` client."""

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
        resource = self._client.messages
        result = await self._wrapper(
            resource.create, resource, (), _kwargs(model, messages, self._max_tokens, stream, timeout)
        )
        return AnthropicDeltas(result) if stream else _from_message(result)


class AnthropicProvider:
    """Messages API calls through an ``anthropic`` client, reported through a given handler.

    Wrappers are built once per handler (a run's handler is cached by its ``RLM``, so this
    holds a handful); the per-call work is the instrumentation's own wrapper. Thread-safe."""

    name = PROVIDER

    def __init__(self) -> None:
        self._wrappers = HandlerWrappers(
            lambda handler: (
                sync_call(handler, MESSAGES_CREATE, report=True),
                async_call(handler, MESSAGES_CREATE, report=True),
            )
        )

    def create(self, handler: TelemetryHandler, client: Any) -> _SyncCall:
        ensure_hooks()  # the SDK-span gate and the retry hooks (once per run: an uninstrument may drop them)
        return _SyncCall(self._wrappers.sync(handler), client)

    def acreate(self, handler: TelemetryHandler, client: Any) -> _AsyncCall:
        ensure_hooks()
        return _AsyncCall(self._wrappers.async_(handler), client)

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """An ``anthropic.Anthropic`` that retries by ``policy`` (and reports each retry).
        ``options``: client options plus ``max_tokens``.
        :class:`~rlm_toolkit.runtime.RLMCredentialsError` (one line) when it cannot
        authenticate."""
        import anthropic

        client = built(anthropic.Anthropic, policy, options)
        check_anthropic_client(client)
        return client

    def async_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """:meth:`sync_client` for ``anthropic.AsyncAnthropic``."""
        import anthropic

        client = built(anthropic.AsyncAnthropic, policy, options)
        check_anthropic_client(client)
        return client


#: The one provider of this SDK.
ANTHROPIC = AnthropicProvider()
