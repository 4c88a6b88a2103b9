"""Wrapper factories for the Messages API's call methods, sync and async.

A factory runs once at instrument time; the returned closure does the per-call minimum:
suppression check, one invocation (one span per API call), the user's call outside any broad
``except``, and the result handed back unchanged (streams as proxies, the ``stream()`` helper's
manager as a proxy whose ``__enter__`` starts the call).

One span per call: while a wrapped call runs (:data:`CURRENT` is set), the SDK's own tracing
starts no span for it (``_hooks.sdk_span_gate``), whatever its ``open_telemetry`` option says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import wrapt
from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import set_span_in_context

from rlm_toolkit._notices import RAW_RESPONSE, say_once
from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import STREAM_END_ERROR
from rlm_toolkit.genai import AsyncStreamProxy, Invocation, StreamState, SyncStreamProxy, TelemetryHandler
from rlm_toolkit.genai._context import REPORTED, current_scope
from rlm_toolkit.instrumentation._stainless._calls import fail, stop_anyway
from rlm_toolkit.instrumentation._stainless._results import Kinds, RawStreamResponse, suppressed
from rlm_toolkit.instrumentation.anthropic import _request as rq
from rlm_toolkit.instrumentation.anthropic._events import MessageEvents
from rlm_toolkit.instrumentation.anthropic._specs import ApiSpec

#: The invocation whose SDK call is running in this context (read by the SDK-span gate and the
#: retry hooks).
CURRENT: ContextVar[Invocation | None] = ContextVar("rlm_toolkit.anthropic.current", default=None)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

PROVIDER = GA.GenAiProviderNameValues.ANTHROPIC.value
_CHAT = GA.GenAiOperationNameValues.CHAT.value
_DEFAULT_PORTS = {"https": 443, "http": 80}
# id(base URL object) -> (that object, host, port): see the openai twin (reading them costs).
_SERVERS: dict[int, tuple[Any, str | None, int | None]] = {}


def _server(instance: Any) -> tuple[str | None, int | None]:
    url = instance._client.base_url
    hit = _SERVERS.get(id(url))
    if hit is not None and hit[0] is url:
        return hit[1], hit[2]
    host = url.host or None
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    if len(_SERVERS) >= 64:  # a process has a handful of clients; bound it anyway
        _SERVERS.clear()
    _SERVERS[id(url)] = (url, host, port)
    return host, port


def _chunk_reader(stream: Any) -> Any:
    """The inner event iterator of a plain ``anthropic.Stream``, or None (iterate the stream)
    when the SDK's own span observes its items (a call we did not gate)."""
    if stream._observer is not None:
        return None
    return stream._iterator


def kinds() -> Kinds:
    return Kinds("anthropic", _chunk_reader)


def _begin(
    handler: TelemetryHandler, spec: ApiSpec, instance: Any, kwargs: dict[str, Any], ctx: Context
) -> Invocation | None:
    """Start the invocation of one call: reported through the current scope's handler (a run
    of an ``RLM`` with its own providers) or else the instrumentation's ``handler``."""
    try:
        model = rq.request_model(kwargs)
        address, port = _server(instance)
        scope = current_scope()
        if scope is not None and scope.handler is not None:
            handler = scope.handler
        inv = Invocation(handler, _CHAT, model, address, port, PROVIDER, scope)
        inv.api = spec.api
        attrs: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: _CHAT, GA.GEN_AI_PROVIDER_NAME: PROVIDER}
        if model:
            attrs[GA.GEN_AI_REQUEST_MODEL] = model
        if address:
            attrs[server_attributes.SERVER_ADDRESS] = address
        if port:
            attrs[server_attributes.SERVER_PORT] = port
        rq.request_attributes(kwargs, attrs)
        effort = rq.reasoning_effort(kwargs)
        if effort is not None:
            attrs[handler.conventions.reasoning_level_attribute] = effort
        if spec.streams:
            attrs[GA.GEN_AI_REQUEST_STREAM] = True
        if inv.wants_content:
            inv.input_messages = rq.input_messages(kwargs.get("messages"))
            inv.system_instructions = rq.system_instructions(kwargs.get("system"))
            inv.tool_definitions = rq.tool_definitions(kwargs.get("tools"))
        inv.start(attrs, kwargs, ctx)
        return inv
    except Exception as exc:
        contain("anthropic call start", exc)
        return None


def _finish(inv: Invocation, spec: ApiSpec, result: Any, kinds: Kinds) -> Any:
    """Hand ``result`` back (streams proxied); end the invocation unless a stream will."""
    try:
        if isinstance(result, kinds.stream):
            return SyncStreamProxy(result, StreamState(inv, MessageEvents(inv)), kinds.chunk_source(result))
        if isinstance(result, kinds.async_stream):
            return AsyncStreamProxy(result, StreamState(inv, MessageEvents(inv)), kinds.chunk_source(result))
        if kinds.raw is not None and isinstance(result, kinds.raw):
            raw: Any = result
            if raw._is_sse_stream:  # with_raw_response / with_streaming_response of a stream
                return RawStreamResponse(result, StreamState(inv, MessageEvents(inv)), kinds)
            if raw.http_response.is_closed:  # with_raw_response: the body is read
                parsed = raw.parse()  # cached by the SDK: the user's parse() gets the same object
                spec.on_response(inv, parsed)
                inv.stop(parsed)
                return result
            # with_streaming_response: reading the body is the user's call; the span covers
            # the request and ends with HTTP-level data only.
            say_once(RAW_RESPONSE)
            inv.stop(result)
            return result
        spec.on_response(inv, result)
        inv.stop(result)
    except Exception as exc:
        stop_anyway(inv, result, exc)
    return result


def sync_call(handler: TelemetryHandler, spec: ApiSpec, report: bool = False) -> Wrapper:
    """The wrapper of a sync Messages call method (``create``/``parse``), reporting through
    ``handler``. ``report``: a wrapper made for the runtime; it hands each call's invocation to
    the caller (``genai._context.REPORTED``), so the run's budget reads the cost the span carries."""
    result_kinds = kinds()

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        ctx = get_current()
        if suppressed(ctx) or CURRENT.get() is not None:
            return wrapped(*args, **kwargs)
        inv = _begin(handler, spec, instance, kwargs, ctx)
        if inv is None:
            return wrapped(*args, **kwargs)
        if report:
            REPORTED.set(inv)
        token = CURRENT.set(inv)
        # The span is current during the SDK call, so HTTP client spans become its children.
        ctx_token = attach(set_span_in_context(inv.span, ctx))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            fail(inv, exc)
            raise
        finally:
            detach(ctx_token)
            CURRENT.reset(token)
        return _finish(inv, spec, result, result_kinds)

    return wrapper


def async_call(handler: TelemetryHandler, spec: ApiSpec, report: bool = False) -> Wrapper:
    """The wrapper of an async Messages call method (see :func:`sync_call`)."""
    result_kinds = kinds()

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        ctx = get_current()
        if suppressed(ctx) or CURRENT.get() is not None:
            return await wrapped(*args, **kwargs)
        inv = _begin(handler, spec, instance, kwargs, ctx)
        if inv is None:
            return await wrapped(*args, **kwargs)
        if report:
            REPORTED.set(inv)
        token = CURRENT.set(inv)
        ctx_token = attach(set_span_in_context(inv.span, ctx))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            fail(inv, exc)
            raise
        finally:
            detach(ctx_token)
            CURRENT.reset(token)
        return _finish(inv, spec, result, result_kinds)

    return wrapper


# -- the ``messages.stream()`` helper ---------------------------------------------------------


def _observe_helper(inv: Invocation, stream: Any, result_kinds: Kinds, is_async: bool) -> StreamState | None:
    """Put our proxy between the helper's ``MessageStream`` and its raw event stream.

    The helper iterates ``self._raw_stream`` lazily (its generator has not started when
    ``__enter__`` returns), so replacing that field with a transparent proxy of the same stream
    lets every exit path (``text_stream``, ``get_final_message()``, an early ``close()``) pass
    through our proxy, which ends the span once."""
    try:
        raw = stream._raw_stream
        state = StreamState(inv, MessageEvents(inv))
        cls = AsyncStreamProxy if is_async else SyncStreamProxy
        stream._raw_stream = cls(raw, state, result_kinds.chunk_source(raw))
        return state
    except Exception as exc:
        contain("anthropic stream helper", exc)
        inv.stop()
        return None


class _Manager(wrapt.ObjectProxy[Any]):
    """The ``MessageStreamManager`` (sync or async) of one ``stream()`` call: entering it makes
    the request, so entering it starts the span."""

    def __init__(
        self,
        wrapped: Any,
        handler: TelemetryHandler,
        spec: ApiSpec,
        instance: Any,
        kwargs: dict[str, Any],
        result_kinds: Kinds,
    ) -> None:
        super().__init__(wrapped)
        self._self_call = (handler, spec, instance, kwargs, result_kinds)
        self._self_state: StreamState | None = None

    def _left(self, exc: Any) -> None:
        state = self._self_state
        if state is not None and isinstance(exc, BaseException):
            state.end(STREAM_END_ERROR, exc)

    def __enter__(self) -> Any:
        handler, spec, instance, kwargs, result_kinds = self._self_call
        ctx = get_current()
        inv = (
            None
            if suppressed(ctx) or CURRENT.get() is not None
            else _begin(handler, spec, instance, kwargs, ctx)
        )
        if inv is None:
            return self.__wrapped__.__enter__()
        token = CURRENT.set(inv)
        ctx_token = attach(set_span_in_context(inv.span, ctx))
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            fail(inv, exc)
            raise
        finally:
            detach(ctx_token)
            CURRENT.reset(token)
        self._self_state = _observe_helper(inv, stream, result_kinds, False)
        return stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        self._left(exc)
        return self.__wrapped__.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Any:
        handler, spec, instance, kwargs, result_kinds = self._self_call
        ctx = get_current()
        inv = (
            None
            if suppressed(ctx) or CURRENT.get() is not None
            else _begin(handler, spec, instance, kwargs, ctx)
        )
        if inv is None:
            return await self.__wrapped__.__aenter__()
        token = CURRENT.set(inv)
        ctx_token = attach(set_span_in_context(inv.span, ctx))
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            fail(inv, exc)
            raise
        finally:
            detach(ctx_token)
            CURRENT.reset(token)
        self._self_state = _observe_helper(inv, stream, result_kinds, True)
        return stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        self._left(exc)
        return await self.__wrapped__.__aexit__(exc_type, exc, tb)


def stream_helper(handler: TelemetryHandler, spec: ApiSpec) -> Wrapper:
    """The wrapper of ``messages.stream()`` (sync and async clients alike: it returns a
    manager without I/O); the span starts when the manager is entered."""
    result_kinds = kinds()

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            return _Manager(manager, handler, spec, instance, kwargs, result_kinds)
        except Exception as exc:
            contain("anthropic stream helper", exc)
            return manager

    return wrapper
