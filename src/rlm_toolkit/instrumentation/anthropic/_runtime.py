"""The ``anthropic`` SDK as the runtime's model provider (``runtime/_provider.ModelProvider``).

A run's model call is one ``messages.create`` (``stream=True`` when a consumer wants tokens),
reported through the run's handler as one inference span (``chat {model}``,
``gen_ai.provider.name=anthropic``) made from the package's pure tables (``_request``,
``_response``, ``_events``): request parameters, response id/model/finish reason, usage with
``gen_ai.usage.input_tokens`` = uncached + cache read + cache write, the cache counts, cost from
the dated Anthropic table (cache writes and hits priced as Anthropic bills them, by the
handler's one cost path, ``Invocation._cost``, as for the app's instrumented calls), content
under the handler's policy, token events for ``on_token``, retries as events.

One span per call: the SDK traces itself (one span per API call, on by default when a tracer
provider is registered), so the clients an RLM builds are made with ``open_telemetry=False``,
and a client of the app's is used through ``with_options(open_telemetry=False)`` for the run's
calls (the app's own calls on it are left as they are).

Retries: the SDK's retry loop (the same Stainless design as ``openai``), with the run's
:class:`~rlm_toolkit.runtime.RetryPolicy` applied by a client subclass whose
``_calculate_retry_timeout`` returns the policy's delay and reports the retry on the running
call's invocation (``rlm.retry`` event, ``rlm.request.attempts``), as the openai side does.
The runtime's messages (chat-shaped, ``system`` first) become ``system=`` and alternating
``user``/``assistant`` turns; ``max_tokens`` (required by the API) is the provider's option.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import AsyncStreamProxy, Invocation, StreamState, SyncStreamProxy, TelemetryHandler
from rlm_toolkit.genai._context import current_scope
from rlm_toolkit.instrumentation.anthropic._events import MessageEvents
from rlm_toolkit.instrumentation.anthropic._request import (
    input_messages,
    request_attributes,
    system_instructions,
)
from rlm_toolkit.instrumentation.anthropic._response import error_type, finish_reason, message_response
from rlm_toolkit.instrumentation.anthropic._runtime_client import DEFAULT_MAX_TOKENS, built
from rlm_toolkit.instrumentation.anthropic._wrappers import CURRENT
from rlm_toolkit.runtime._cut import cut_retry_delay, is_transport_error
from rlm_toolkit.runtime._options import check_anthropic_client
from rlm_toolkit.runtime._result import Usage
from rlm_toolkit.runtime._strategy import Completion

PROVIDER = GA.GenAiProviderNameValues.ANTHROPIC.value
#: In-band stream errors the SDK retries when they come as an HTTP status (500, 529).
_RETRYABLE_IN_BAND = frozenset({"overloaded_error", "api_error"})
_DEFAULT_PORTS = {"https": 443, "http": 80}

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


# -- one call's invocation ------------------------------------------------------------------------


def _server(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.base_url
        return (url.host or None), (url.port or _DEFAULT_PORTS.get(url.scheme))
    except Exception as exc:
        contain("anthropic runtime server", exc)
        return None, None


def _begin(handler: TelemetryHandler, client: Any, kwargs: dict[str, Any]) -> Invocation | None:
    try:
        scope = current_scope()
        if scope is not None and scope.handler is not None:
            handler = scope.handler
        model = kwargs["model"]
        address, port = _server(client)
        inv = Invocation(
            handler, GA.GenAiOperationNameValues.CHAT.value, model, address, port, PROVIDER, scope
        )
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: inv.operation,
            GA.GEN_AI_PROVIDER_NAME: PROVIDER,
            GA.GEN_AI_REQUEST_MODEL: model,
        }
        if address:
            attrs[server_attributes.SERVER_ADDRESS] = address
        if port:
            attrs[server_attributes.SERVER_PORT] = port
        request_attributes(kwargs, attrs)
        if inv.wants_content:
            inv.input_messages = input_messages(kwargs["messages"])
            inv.system_instructions = system_instructions(kwargs.get("system"))
        inv.start(attrs, kwargs)
        return inv
    except Exception as exc:
        contain("anthropic runtime call start", exc)
        return None


def _fail(inv: Invocation | None, exc: BaseException) -> None:
    if inv is None:
        return
    try:
        inv.fail(exc, {error_attributes.ERROR_TYPE: error_type(exc)})
    except Exception as error:
        contain("anthropic runtime call fail", error)


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


def _from_message(inv: Invocation | None, response: Any) -> Completion:
    """A non-streamed reply (its span ended with it) as a :class:`Completion`."""
    if inv is not None:
        try:
            message_response(inv, response)
        except Exception as exc:
            contain("anthropic runtime response", exc)
        inv.stop(response)
    blocks = getattr(response, "content", None) or ()
    stop = getattr(response, "stop_reason", None)
    return Completion(
        content="".join(str(block.text) for block in blocks if getattr(block, "type", None) == "text"),
        usage=_usage(inv),
        finish_reason=finish_reason(stop) if stop else None,
        model=getattr(response, "model", None),
        cost=inv.cost if inv is not None else None,
    )


# -- streamed calls -------------------------------------------------------------------------------


class AnthropicDeltas:
    """The text deltas of a ``messages.create(stream=True)``, through the genai stream proxy
    (which ends the span once on every exit path and delivers token events). Sync and async."""

    __slots__ = ("_events", "_it", "_parts", "_proxy", "_state")

    def __init__(self, proxy: Any, state: StreamState | None, events: MessageEvents | None) -> None:
        self._proxy = proxy
        self._state = state
        self._events = events
        self._parts: list[str] = []
        self._it: Any = None

    @staticmethod
    def _text(event: Any) -> str | None:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            return str(event.delta.text)
        return None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._it is None:
            self._it = iter(self._proxy)
        for event in self._it:
            text = self._text(event)
            if text:
                self._parts.append(text)
                return text
        raise StopIteration

    def __enter__(self) -> AnthropicDeltas:
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._proxy.__exit__(*exc_info)

    def close(self) -> None:
        self._proxy.close()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        if self._it is None:
            self._it = self._proxy.__aiter__()
        async for event in self._it:
            text = self._text(event)
            if text:
                self._parts.append(text)
                return text
        raise StopAsyncIteration

    async def __aenter__(self) -> AnthropicDeltas:
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._proxy.__aexit__(*exc_info)

    async def aclose(self) -> None:
        await self._proxy.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (``response``, headers...) is the SDK stream's.
        return getattr(self._proxy, name)

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        if self._state is not None:
            self._state.end(reason, exc, end_time, end_ns)

    def retried(self, attempt: int) -> None:
        if self._state is not None:
            self._state.inv.attempts = attempt

    def completion(self) -> Completion:
        events = self._events
        inv = self._state.inv if self._state is not None else None
        usage = _usage(inv) if inv is not None and inv.ended else Usage(known=False)
        stop = events.stop_reason if events is not None else None
        return Completion(
            content="".join(self._parts),
            usage=usage,
            finish_reason=finish_reason(stop) if stop else None,
            model=events.model if events is not None else None,
            cost=inv.cost if inv is not None else None,
        )


def _stream_parts(inv: Invocation | None) -> tuple[StreamState | None, MessageEvents | None]:
    if inv is None:
        return None, None
    events = MessageEvents(inv)
    return StreamState(inv, events), events


# -- the provider ---------------------------------------------------------------------------------


def _kwargs(
    model: str, messages: list[dict[str, Any]], max_tokens: int, timeout: float | None
) -> dict[str, Any]:
    system, turns = to_messages(messages)
    kwargs: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": max_tokens}
    if system is not None:
        kwargs["system"] = system
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def _untraced(client: Any) -> Any:
    """``client`` with the SDK's own tracing off (so a call never shows two spans)."""
    if getattr(client, "_rlm_untraced", False):
        return client
    try:
        return client.with_options(open_telemetry=False)
    except TypeError:  # an SDK before 1.14 (no self-tracing): use it as is
        return client


class _SyncCall:
    """A run's ``ModelCall`` over an ``anthropic.Anthropic`` client."""

    __slots__ = ("_client", "_handler", "_max_tokens")

    def __init__(self, handler: TelemetryHandler, client: Any) -> None:
        self._handler = handler
        self._client = _untraced(client)
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
        kwargs = _kwargs(model, messages, self._max_tokens, timeout)
        if stream:
            kwargs["stream"] = True
        inv = _begin(self._handler, self._client, kwargs)
        token = CURRENT.set(inv)
        try:
            result = self._client.messages.create(**kwargs)
        except BaseException as exc:
            _fail(inv, exc)
            raise
        finally:
            CURRENT.reset(token)
        if not stream:
            return _from_message(inv, result)
        state, events = _stream_parts(inv)
        return AnthropicDeltas(SyncStreamProxy(result, state) if state is not None else result, state, events)


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
        kwargs = _kwargs(model, messages, self._max_tokens, timeout)
        if stream:
            kwargs["stream"] = True
        inv = _begin(self._handler, self._client, kwargs)
        token = CURRENT.set(inv)
        try:
            result = await self._client.messages.create(**kwargs)
        except BaseException as exc:
            _fail(inv, exc)
            raise
        finally:
            CURRENT.reset(token)
        if not stream:
            return _from_message(inv, result)
        state, events = _stream_parts(inv)
        return AnthropicDeltas(
            AsyncStreamProxy(result, state) if state is not None else result, state, events
        )


class AnthropicProvider:
    """Messages API calls through an ``anthropic`` client, reported through a given handler.
    Stateless; thread-safe."""

    name = PROVIDER

    def create(self, handler: TelemetryHandler, client: Any) -> _SyncCall:
        return _SyncCall(handler, client)

    def acreate(self, handler: TelemetryHandler, client: Any) -> _AsyncCall:
        return _AsyncCall(handler, client)

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """An ``anthropic.Anthropic`` that retries by ``policy`` (and reports each retry), with
        the SDK's own tracing off. ``options``: client options plus ``max_tokens``.
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
