"""Hooks on the SDK's request path (never user calls: they start no span).

* ``start_api_call_span`` (``anthropic._base_client``): the SDK's own tracing (on by default
  since anthropic 1.14) starts one span per API call here. While one of our wrapped calls runs,
  the gate answers None -- "no span for this call", a result the SDK handles itself (it runs the
  call untraced) -- so the call has exactly one span, ours. Where the SDK would have sent its
  span's trace context (its ``propagation`` option, on by default), the request carries ours
  instead, on every attempt. Calls we do not wrap keep the SDK's span.
* ``_sleep_for_retry`` (sync/async) and ``_calculate_retry_timeout``: the SDK's retry loop
  sleeps through the first, which asks the second for the delay; together they give the attempt,
  the failed response (or the transport error being retried) and the delay, reported on the
  running invocation (``rlm.retry`` event and record, ``rlm.request.attempts``, ``on_retry``).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry.propagate import inject
from opentelemetry.semconv.attributes import error_attributes, http_attributes
from opentelemetry.trace import set_span_in_context

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import RLM_RETRY_AFTER, RLM_RETRY_ATTEMPT, RLM_RETRY_DELAY, RLM_RETRY_MAX_RETRIES
from rlm_toolkit.instrumentation.anthropic._request import is_given
from rlm_toolkit.instrumentation.anthropic._wrappers import CURRENT

#: (client, retries taken, max retries, failed response) of the retry being slept for.
_PENDING: ContextVar[tuple[Any, int, int, Any] | None] = ContextVar(
    "rlm_toolkit.anthropic.retry", default=None
)


def sdk_span_gate(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    inv = CURRENT.get()
    if inv is None or inv.ended:
        return wrapped(*args, **kwargs)
    try:
        if kwargs.get("propagation", True):
            options = args[2] if len(args) > 2 else kwargs["options"]
            carrier: dict[str, str] = {}
            inject(carrier, set_span_in_context(inv.span))
            if carrier:
                headers = options.headers
                base = dict(headers) if is_given(headers) and isinstance(headers, Mapping) else {}
                options.headers = {**base, **carrier}
    except Exception as exc:
        contain("anthropic trace context", exc)
    return None


def sleep_for_retry(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if CURRENT.get() is None:
        return wrapped(*args, **kwargs)
    token = _PENDING.set(_pending(instance, kwargs))
    try:
        return wrapped(*args, **kwargs)
    finally:
        _PENDING.reset(token)


async def asleep_for_retry(
    wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if CURRENT.get() is None:
        return await wrapped(*args, **kwargs)
    token = _PENDING.set(_pending(instance, kwargs))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _PENDING.reset(token)


def _pending(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Any, int, int, Any] | None:
    taken, most = kwargs.get("retries_taken"), kwargs.get("max_retries")
    if not isinstance(taken, int) or not isinstance(most, int):
        return None  # an SDK whose loop passes them otherwise: no report rather than a wrong one
    return instance, taken, most, kwargs.get("response")


def retry_timeout(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    delay = wrapped(*args, **kwargs)
    report_delay(delay)
    return delay


def report_delay(delay: float) -> None:
    """Report the retry the SDK is sleeping for, with the ``delay`` it chose. The seam for a
    client subclass that overrides ``_calculate_retry_timeout`` (hiding our hook on the base
    class), e.g. the runtime's retry policy: call it from the override with the delay used.
    No-op outside a retry sleep of one of our wrapped calls; never raises."""
    pending = _PENDING.get()
    if pending is not None:
        report_retry(*pending, delay)


def _retry_error(client: Any, response: Any) -> tuple[BaseException | None, int | None]:
    """The error the SDK is retrying as it would raise it, and the HTTP status."""
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        try:
            error: BaseException = client._make_status_error_from_response(response)
        except Exception:  # a streamed body not read: the status alone
            error = client._make_status_error(f"Error code: {status}", body=None, response=response)
        return error, status
    exc = sys.exc_info()[1]  # a transport error: the SDK's own APITimeoutError / APIConnectionError
    return exc, status if isinstance(status, int) else None


def report_retry(client: Any, retries_taken: int, max_retries: int, response: Any, delay: float) -> None:
    """Report on the running invocation that the SDK will retry after ``delay`` seconds.
    No-op when no instrumented call is running; never raises."""
    inv = CURRENT.get()
    if inv is None or inv.ended:
        return
    try:
        error, status = _retry_error(client, response)
        attrs: dict[str, Any] = {
            RLM_RETRY_ATTEMPT: retries_taken + 1,
            RLM_RETRY_MAX_RETRIES: max_retries,
            RLM_RETRY_DELAY: float(delay),
        }
        if response is not None:
            retry_after = client._parse_retry_after_header(response.headers)
            if retry_after is not None:
                attrs[RLM_RETRY_AFTER] = float(retry_after)
        if status is not None:
            attrs[http_attributes.HTTP_RESPONSE_STATUS_CODE] = status
        if error is not None:
            attrs[error_attributes.ERROR_TYPE] = type(error).__qualname__
        inv.retry(attrs, error)
    except Exception as exc:
        contain("anthropic retry hook", exc)
