"""Wrapper factories for the SDK's call methods (``create``/``parse``), sync and async.

A factory runs once at instrument time; the returned closure does the per-call minimum:
suppression check, one invocation (one logical span per user call), the user's call outside
any broad ``except``, and the result handed back unchanged (streams as proxies).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, cast

from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import set_span_in_context

from rlm_toolkit._notices import RAW_RESPONSE, say_once
from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import RLM_OPENAI_API
from rlm_toolkit.genai import AsyncStreamProxy, Invocation, StreamState, SyncStreamProxy, TelemetryHandler
from rlm_toolkit.genai._context import REPORTED, current_scope
from rlm_toolkit.instrumentation._stainless._calls import fail, stop_anyway
from rlm_toolkit.instrumentation._stainless._results import Kinds, RawStreamResponse, suppressed
from rlm_toolkit.instrumentation.openai._provider import provider_name
from rlm_toolkit.instrumentation.openai._request import (
    chat_tools,
    is_given,
    is_materialised,
    request_attributes,
    with_stream_usage,
)
from rlm_toolkit.instrumentation.openai._specs import ApiSpec

#: The invocation whose SDK call is running in this context (read by the request/retry hooks).
CURRENT: ContextVar[Invocation | None] = ContextVar("rlm_toolkit.openai.current", default=None)
#: Set by a ``.stream()`` helper's ``__enter__`` so the inner ``create`` is labelled as such.
API_LABEL: ContextVar[str | None] = ContextVar("rlm_toolkit.openai.api_label", default=None)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_DEFAULT_PORTS = {"https": 443, "http": 80}
# id(base URL object) -> (that object, host, port, provider name). A client's base URL rarely
# changes (only by assigning ``client.base_url``, which makes a new object), and reading
# host/port/scheme from it costs ~15k instructions per call. Keeping the object in the entry
# pins its id. Each client has its own URL object, so the provider (which may depend on the
# client's class, see ``_provider``) is cached with it.
_SERVERS: dict[int, tuple[Any, str | None, int | None, str]] = {}


def _server(instance: Any) -> tuple[str | None, int | None, str]:
    client = instance._client
    url = client.base_url
    hit = _SERVERS.get(id(url))
    if hit is not None and hit[0] is url:
        return hit[1], hit[2], hit[3]
    host = url.host or None
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    provider = provider_name(client, host)
    if len(_SERVERS) >= 64:  # a process has a handful of clients; bound it anyway
        _SERVERS.clear()
    _SERVERS[id(url)] = (url, host, port, provider)
    return host, port, provider


def fill_input(inv: Invocation, spec: ApiSpec, source: Mapping[str, Any], from_body: bool) -> None:
    """Messages, system instructions and tool definitions from kwargs or the built body."""
    if spec.content_key is not None and spec.to_messages is not None:
        value = source.get(spec.content_key)
        if from_body or is_materialised(value):
            if value is not None and is_given(value):
                inv.input_messages = spec.to_messages(value)
        else:
            inv.needs_body = True
    if spec.system_key is not None:
        value = source.get(spec.system_key)
        if isinstance(value, str):
            inv.system_instructions = [{"type": "text", "content": value}]
    if spec.tools:
        value = source.get("tools")
        if from_body or is_materialised(value):
            inv.tool_definitions = chat_tools(value)
        else:
            inv.needs_body = True


def _begin(
    handler: TelemetryHandler,
    spec: ApiSpec,
    body_hook: Callable[[], None],
    instance: Any,
    kwargs: dict[str, Any],
    ctx: Context | None = None,
) -> Invocation | None:
    """Start the invocation of one call: reported through the current scope's handler (a run
    of an ``RLM`` with its own providers) or else the instrumentation's ``handler``."""
    try:
        model = kwargs.get("model")
        if not isinstance(model, str):
            model = None
        address, port, provider = _server(instance)
        scope = current_scope()
        if scope is not None and scope.handler is not None:
            handler = scope.handler
        inv = Invocation(handler, spec.operation, model, address, port, provider, scope)
        inv.api = API_LABEL.get() or spec.api
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: spec.operation,
            GA.GEN_AI_PROVIDER_NAME: provider,
            RLM_OPENAI_API: inv.api,
        }
        if model:
            attrs[GA.GEN_AI_REQUEST_MODEL] = model
        if address:
            attrs[server_attributes.SERVER_ADDRESS] = address
        if port:
            attrs[server_attributes.SERVER_PORT] = port
        request_attributes(kwargs, spec.params, attrs, handler.conventions)
        if inv.wants_content:
            fill_input(inv, spec, kwargs, from_body=False)
            if inv.needs_body:
                body_hook()
        inv.start(attrs, kwargs, ctx)
        return inv
    except Exception as exc:
        contain("openai call start", exc)
        return None


def _Kinds() -> Kinds:  # the openai flavour of the shared class (tests name it so)
    return Kinds("openai")


def _stream_state(inv: Invocation, spec: ApiSpec, usage_added: bool) -> StreamState:
    assert spec.chunks is not None
    state = StreamState(inv, spec.chunks(inv))
    # We asked for the usage chunk the app did not: hide it (``genai._stream``).
    state.hides_usage = usage_added
    return state


def _usage_kwargs(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Opt-in stream usage: the kwargs with ``include_usage`` added, or None (unchanged)."""
    try:
        return with_stream_usage(kwargs)
    except Exception as exc:
        contain("stream usage", exc)
        return None


def _finish(inv: Invocation, spec: ApiSpec, result: Any, kinds: Kinds, usage_added: bool = False) -> Any:
    """Hand ``result`` back (streams proxied); end the invocation unless a stream will."""
    try:
        if isinstance(result, kinds.stream) and spec.chunks is not None:
            return SyncStreamProxy(result, _stream_state(inv, spec, usage_added), kinds.chunk_source(result))
        if isinstance(result, kinds.async_stream) and spec.chunks is not None:
            return AsyncStreamProxy(result, _stream_state(inv, spec, usage_added), kinds.chunk_source(result))
        if kinds.legacy is not None and isinstance(result, kinds.legacy):
            if getattr(result, "_stream", False) and spec.chunks is not None:
                return RawStreamResponse(result, _stream_state(inv, spec, usage_added), kinds)
            parsed = cast(Any, result).parse()  # cached by the SDK: the user's parse() gets the same object
            spec.on_response(inv, parsed)
            inv.stop(parsed)
            return result
        if kinds.raw is not None and isinstance(result, kinds.raw):
            # with_streaming_response: the body is not read yet and reading it is the user's
            # call; the span covers the request and ends with HTTP-level data only.
            say_once(RAW_RESPONSE)
            inv.stop(result)
            return result
        spec.on_response(inv, result)
        inv.stop(result)
    except Exception as exc:
        stop_anyway(inv, result, exc)
    return result


def sync_call(
    handler: TelemetryHandler, spec: ApiSpec, body_hook: Callable[[], None], report: bool = False
) -> Wrapper:
    """The wrapper of a sync SDK call method, reporting through ``handler``.

    ``body_hook``: installs the request-body hook, called when a call's content must be read
    from the body the SDK builds (see ``fill_input``). ``report``: a wrapper made for the
    runtime; it hands each call's invocation to the caller (``genai._context.REPORTED``), so
    the run's budget reads the cost the span carries."""
    kinds = _Kinds()
    stream_usage = handler.stream_usage and spec.stream_usage

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        ctx = get_current()
        if suppressed(ctx) or CURRENT.get() is not None:
            return wrapped(*args, **kwargs)
        inv = _begin(handler, spec, body_hook, instance, kwargs, ctx)
        if inv is None:
            return wrapped(*args, **kwargs)
        if report:
            REPORTED.set(inv)
        added = None
        if stream_usage:  # opt-in, decided at instrument time (TelemetryHandler.stream_usage)
            added = _usage_kwargs(kwargs)
            if added is not None:
                kwargs = added
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
        return _finish(inv, spec, result, kinds, added is not None)

    return wrapper


def async_call(
    handler: TelemetryHandler, spec: ApiSpec, body_hook: Callable[[], None], report: bool = False
) -> Wrapper:
    """The wrapper of an async SDK call method (see :func:`sync_call`)."""
    kinds = _Kinds()
    stream_usage = handler.stream_usage and spec.stream_usage

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        ctx = get_current()
        if suppressed(ctx) or CURRENT.get() is not None:
            return await wrapped(*args, **kwargs)
        inv = _begin(handler, spec, body_hook, instance, kwargs, ctx)
        if inv is None:
            return await wrapped(*args, **kwargs)
        if report:
            REPORTED.set(inv)
        added = None
        if stream_usage:  # opt-in, decided at instrument time (TelemetryHandler.stream_usage)
            added = _usage_kwargs(kwargs)
            if added is not None:
                kwargs = added
        token = CURRENT.set(inv)
        # The span is current during the SDK call, so HTTP client spans become its children.
        ctx_token = attach(set_span_in_context(inv.span, ctx))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            fail(inv, exc)
            raise
        finally:
            detach(ctx_token)
            CURRENT.reset(token)
        return _finish(inv, spec, result, kinds, added is not None)

    return wrapper
