"""``messages.count_tokens`` and the Message Batches calls (and their ``beta`` twins).

One CLIENT span of ours per call, as for ``messages.create`` (the SDK's own span is gated off
while it runs, ``_hooks.sdk_span_gate``), with ``gen_ai.provider.name=anthropic``,
``server.*``, the surface in ``rlm.anthropic.api`` and a custom ``gen_ai.operation.name``
(the conventions name neither operation):

* ``count_tokens {model}`` (operation ``count_tokens``): the count is
  ``rlm.count_tokens.input_tokens``. Counting tokens is not usage, so no ``gen_ai.usage.*``
  attribute, no token metric, no cost and no ``on_llm_*`` callback comes of it.
* ``batches.create`` / ``retrieve`` / ``list`` / ``cancel`` / ``delete`` / ``results``:
  ``rlm.batch.id``, ``rlm.batch.processing_status``, ``rlm.batch.requests`` (create) and
  ``rlm.batch.count`` (a list page). The batch's own messages are billed when processed and
  are not calls of this process: nothing is counted for them. ``results`` covers the SDK's
  lookup of the batch and the request that opens the JSONL body (the user reads it); ``list``
  covers the first page (later pages of auto-pagination are requests of their own, untraced
  by us).

Their duration goes to the operation-duration histogram under their own operation name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import set_span_in_context

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    OPERATION_BATCHES,
    OPERATION_COUNT_TOKENS,
    RLM_ANTHROPIC_API,
    RLM_BATCH_COUNT,
    RLM_BATCH_ID,
    RLM_BATCH_REQUESTS,
    RLM_BATCH_STATUS,
    RLM_COUNT_TOKENS_INPUT_TOKENS,
)
from rlm_toolkit.genai import Invocation, TelemetryHandler
from rlm_toolkit.genai._context import current_scope
from rlm_toolkit.instrumentation._stainless._calls import fail
from rlm_toolkit.instrumentation._stainless._results import Kinds, suppressed
from rlm_toolkit.instrumentation.anthropic._wrappers import CURRENT, PROVIDER, Wrapper, _server, kinds


def _count(attrs: dict[str, Any], response: Any) -> None:
    count = getattr(response, "input_tokens", None)
    if isinstance(count, int) and not isinstance(count, bool):
        attrs[RLM_COUNT_TOKENS_INPUT_TOKENS] = count


def _batch(attrs: dict[str, Any], response: Any) -> None:
    batch_id = getattr(response, "id", None)
    if isinstance(batch_id, str) and batch_id:
        attrs[RLM_BATCH_ID] = batch_id
    status = getattr(response, "processing_status", None)
    if isinstance(status, str) and status:
        attrs[RLM_BATCH_STATUS] = status


def _page(attrs: dict[str, Any], page: Any) -> None:
    data = getattr(page, "data", None)
    if isinstance(data, list):
        attrs[RLM_BATCH_COUNT] = len(data)


def _nothing(attrs: dict[str, Any], response: Any) -> None:
    return None


@dataclass(frozen=True)
class OpSpec:
    api: str  # e.g. "messages.count_tokens", "beta.messages.batches.create"
    operation: str  # gen_ai.operation.name
    on_response: Callable[[dict[str, Any], Any], None]
    #: The call names a batch (positional ``message_batch_id``).
    batch_arg: bool = False


def _spec(
    prefix: str, name: str, on_response: Callable[[dict[str, Any], Any], None], batch_arg: bool
) -> OpSpec:
    return OpSpec(f"{prefix}messages.batches.{name}", f"{OPERATION_BATCHES}.{name}", on_response, batch_arg)


COUNT_TOKENS = OpSpec("messages.count_tokens", OPERATION_COUNT_TOKENS, _count)
BETA_COUNT_TOKENS = OpSpec("beta.messages.count_tokens", OPERATION_COUNT_TOKENS, _count)
#: method name -> (spec of ``messages.batches``, spec of ``beta.messages.batches``)
BATCHES: dict[str, tuple[OpSpec, OpSpec]] = {
    name: (_spec("", name, fn, arg), _spec("beta.", name, fn, arg))
    for name, fn, arg in (
        ("create", _batch, False),
        ("retrieve", _batch, True),
        ("list", _page, False),
        ("cancel", _batch, True),
        ("delete", _batch, True),
        ("results", _nothing, True),
    )
}


def _begin(
    handler: TelemetryHandler,
    spec: OpSpec,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ctx: Context,
) -> Invocation | None:
    try:
        model = kwargs.get("model") if spec.operation == OPERATION_COUNT_TOKENS else None
        model = model if isinstance(model, str) and model else None
        address, port = _server(instance)
        scope = current_scope()
        if scope is not None and scope.handler is not None:
            handler = scope.handler
        inv = Invocation(handler, spec.operation, model, address, port, PROVIDER, scope)
        inv.api = spec.api
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: spec.operation,
            GA.GEN_AI_PROVIDER_NAME: PROVIDER,
            RLM_ANTHROPIC_API: spec.api,
        }
        if model:
            attrs[GA.GEN_AI_REQUEST_MODEL] = model
        if address:
            attrs[server_attributes.SERVER_ADDRESS] = address
        if port:
            attrs[server_attributes.SERVER_PORT] = port
        if spec.batch_arg:
            batch_id = args[0] if args else kwargs.get("message_batch_id")
            if isinstance(batch_id, str) and batch_id:
                attrs[RLM_BATCH_ID] = batch_id
        requests = kwargs.get("requests")
        if spec.operation == f"{OPERATION_BATCHES}.create" and isinstance(requests, (list, tuple)):
            attrs[RLM_BATCH_REQUESTS] = len(requests)
        inv.start(attrs, kwargs, ctx)
        return inv
    except Exception as exc:
        contain("anthropic operation start", exc)
        return None


def _finish(inv: Invocation, spec: OpSpec, result: Any, result_kinds: Kinds) -> None:
    try:
        parsed: Any = result
        raw = tuple(k for k in (result_kinds.legacy, result_kinds.raw) if k is not None)
        if raw and isinstance(result, raw):
            # with_raw_response: the body is read (parse() is cached by the SDK); with
            # streaming_response the body is the user's to read: HTTP-level data only.
            response: Any = result
            parsed = response.parse() if response.http_response.is_closed else None
        attrs: dict[str, Any] = {}
        if parsed is not None:
            spec.on_response(attrs, parsed)
        inv.response_attributes = attrs or None
    except Exception as exc:
        contain("anthropic operation finish", exc)
    try:
        inv.stop(result)
    except Exception as exc:
        contain("anthropic operation stop", exc)


def _enter(handler: TelemetryHandler, spec: OpSpec, instance: Any, args: Any, kwargs: Any) -> Any:
    """(invocation, CURRENT token, context token) of a call to trace, or None to pass through."""
    ctx = get_current()
    if suppressed(ctx) or CURRENT.get() is not None:
        return None
    inv = _begin(handler, spec, instance, args, kwargs, ctx)
    if inv is None:
        return None
    return inv, CURRENT.set(inv), attach(set_span_in_context(inv.span, ctx))


def _leave(entered: Any) -> None:
    detach(entered[2])
    CURRENT.reset(entered[1])


def sync_op(handler: TelemetryHandler, spec: OpSpec) -> Wrapper:
    """The wrapper of a sync method (and of the async client's ``batches.list``, which returns
    a paginator without I/O: see :class:`_Pages`)."""
    result_kinds = kinds()

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entered = _enter(handler, spec, instance, args, kwargs)
        if entered is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            fail(entered[0], exc)
            raise
        finally:
            _leave(entered)
        _finish(entered[0], spec, result, result_kinds)
        return result

    return wrapper


def async_op(handler: TelemetryHandler, spec: OpSpec) -> Wrapper:
    """The wrapper of an async method (see :func:`sync_op`)."""
    result_kinds = kinds()

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        entered = _enter(handler, spec, instance, args, kwargs)
        if entered is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            fail(entered[0], exc)
            raise
        finally:
            _leave(entered)
        _finish(entered[0], spec, result, result_kinds)
        return result

    return wrapper


class _Pages(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The ``AsyncPaginator`` of an async ``batches.list()``: awaiting it (directly or through
    ``async for``) fetches the first page, so that is what the span covers."""

    def __init__(self, wrapped: Any, call: tuple[Any, ...]) -> None:
        super().__init__(wrapped)
        self._self_call = call

    def __await__(self) -> Any:
        return self._self_first().__await__()

    async def _self_first(self) -> Any:
        handler, spec, instance, args, kwargs, result_kinds = self._self_call
        entered = _enter(handler, spec, instance, args, kwargs)
        if entered is None:
            return await self.__wrapped__
        try:
            page = await self.__wrapped__
        except BaseException as exc:
            fail(entered[0], exc)
            raise
        finally:
            _leave(entered)
        _finish(entered[0], spec, page, result_kinds)
        return page

    def __aiter__(self) -> Any:
        return self._self_items()

    async def _self_items(self) -> Any:
        page = await self
        async for item in page:
            yield item


def async_pages(handler: TelemetryHandler, spec: OpSpec) -> Wrapper:
    """The wrapper of the async client's ``batches.list`` (a plain method returning a
    paginator that makes the request when awaited)."""
    result_kinds = kinds()

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        paginator = wrapped(*args, **kwargs)
        try:
            return _Pages(paginator, (handler, spec, instance, args, kwargs, result_kinds))
        except Exception as exc:
            contain("anthropic batch pages", exc)
            return paginator

    return wrapper
