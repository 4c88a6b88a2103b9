"""Hooks on the SDK's request path and stream helpers (not user calls: they never start spans).

* ``BaseClient._build_request``: reads message content from the request body the SDK built
  (``FinalRequestOptions.json_data``) when the user's ``messages``/``input`` was a one-shot
  iterable, so the iterable reaches the SDK intact.
* ``BaseClient._calculate_retry_timeout``: the SDK calls it from ``_sleep_for_retry`` inside
  the ``except`` block of its retry loop, just before sleeping -- so the exception being retried
  is ``sys.exc_info()``, and the return value is the delay. One sync hook serves both clients.
  The reporting itself is :func:`report_retry`, public to the package so a client subclass that
  overrides ``_calculate_retry_timeout`` (the runtime's retry policy) reports the same way.
* ``*StreamManager.__enter__``/``__aenter__``: label the inner ``create(stream=True)``.
* ``ChatCompletionStream.close``/``ResponseStream.close`` (sync/async): the helper closes the
  HTTP response directly, bypassing our stream proxy; end the proxy's span as ``closed``.
* ``*StreamManager.__exit__``/``__aexit__``: leaving the helper's ``with`` block by an
  exception (the user's, or the helper's own, e.g. ``LengthFinishReasonError`` while parsing)
  ends the span as ``error``, as it does for a plain stream. Our proxy cannot see those: the
  helper raises them in its own generator, and ours is only closed.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry.semconv.attributes import error_attributes, http_attributes

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    RLM_RETRY_AFTER,
    RLM_RETRY_ATTEMPT,
    RLM_RETRY_DELAY,
    RLM_RETRY_MAX_RETRIES,
    STREAM_END_CLOSED,
    STREAM_END_ERROR,
)
from rlm_toolkit.genai import stream_state_of
from rlm_toolkit.instrumentation.openai._specs import ApiSpec
from rlm_toolkit.instrumentation.openai._wrappers import API_LABEL, CURRENT, Wrapper, fill_input


def build_request(specs: Mapping[str, ApiSpec]) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        inv = CURRENT.get()
        if inv is not None and inv.needs_body:
            try:
                inv.needs_body = False
                options = args[0] if args else kwargs["options"]
                body = options.json_data
                spec = specs.get(inv.api)
                if spec is not None and isinstance(body, Mapping):
                    fill_input(inv, spec, body, from_body=True)
            except Exception as exc:
                contain("openai request body", exc)
        return wrapped(*args, **kwargs)

    return wrapper


def _is_timeout(exc: BaseException) -> bool:
    # httpx (openai 1.x) and httpx2 (3.x) both name it TimeoutException; match by name so no
    # transport module is imported here.
    return any(cls.__name__ == "TimeoutException" for cls in type(exc).__mro__)


def _retry_error(instance: Any, exc: BaseException | None) -> tuple[BaseException | None, int | None]:
    """The exception the SDK is retrying, as the SDK would raise it, and the HTTP status.

    ``exc`` is the transport-level exception the SDK caught (``sys.exc_info()`` in its retry
    loop): an ``HTTPStatusError`` for a retryable status (the SDK would raise
    ``_make_status_error_from_response(response)``: ``RateLimitError`` etc. with the API's
    message; a non-streamed response's body has been read, so the message is there), or a
    timeout / transport error (the SDK would raise ``APITimeoutError`` / ``APIConnectionError``
    built with the request).
    """
    if exc is None:
        return None, None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and response is not None:
        try:
            error: BaseException = instance._make_status_error_from_response(response)
            return error, status
        except Exception:  # an SDK without it, or a body that cannot be read
            pass
        try:
            return instance._make_status_error(f"Error code: {status}", body=None, response=response), status
        except Exception:
            return exc, status
    try:
        import openai

        request = exc.request  # type: ignore[attr-defined]  # httpx: RuntimeError when unset
        if _is_timeout(exc):
            return openai.APITimeoutError(request=request), None
        return openai.APIConnectionError(request=request), None
    except Exception:  # not a transport error we know: hand over what was caught
        return exc, None


def report_retry(
    instance: Any, delay: float, remaining_retries: int, options: Any, response_headers: Any
) -> None:
    """Report that the SDK will retry the current call after ``delay`` seconds.

    Everything the ``_calculate_retry_timeout`` hook does once the delay is known: the
    ``rlm.retry`` span event and log record (with the error the SDK is retrying as payload),
    the attempts count and the retries counter. Call it from inside the SDK's retry loop (the
    exception being retried is read from ``sys.exc_info()``), e.g. from an override of
    ``_calculate_retry_timeout`` that hides our hook on the base class. No-op when the SDK is
    not instrumented or no instrumented call is running; never raises.
    """
    inv = CURRENT.get()
    if inv is None or inv.ended:
        return
    try:
        max_retries = options.get_max_retries(instance.max_retries)
        error, status = _retry_error(instance, sys.exc_info()[1])
        attrs: dict[str, Any] = {
            RLM_RETRY_ATTEMPT: max_retries - remaining_retries + 1,
            RLM_RETRY_MAX_RETRIES: max_retries,
            RLM_RETRY_DELAY: float(delay),
        }
        if response_headers is not None:
            retry_after = instance._parse_retry_after_header(response_headers)
            if retry_after is not None:
                attrs[RLM_RETRY_AFTER] = float(retry_after)
        if status is not None:
            attrs[http_attributes.HTTP_RESPONSE_STATUS_CODE] = status
        if error is not None:
            attrs[error_attributes.ERROR_TYPE] = type(error).__qualname__
        inv.retry(attrs, error)
    except Exception as exc:
        contain("openai retry hook", exc)


def retry_timeout(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    delay = wrapped(*args, **kwargs)
    if CURRENT.get() is None:
        return delay
    try:
        remaining = args[0] if args else kwargs["remaining_retries"]
        options = args[1] if len(args) > 1 else kwargs["options"]
        headers = args[2] if len(args) > 2 else kwargs.get("response_headers")
    except (IndexError, KeyError) as exc:
        contain("openai retry hook arguments", exc)
        return delay
    report_retry(instance, delay, remaining, options, headers)
    return delay


def label_enter(api: str) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = API_LABEL.set(api)
        try:
            return wrapped(*args, **kwargs)
        finally:
            API_LABEL.reset(token)

    return wrapper


def label_aenter(api: str) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        token = API_LABEL.set(api)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            API_LABEL.reset(token)

    return wrapper


def helper_exit(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    _fail_helper(instance, args, kwargs)
    return wrapped(*args, **kwargs)


async def helper_aexit(
    wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    _fail_helper(instance, args, kwargs)
    return await wrapped(*args, **kwargs)


def _fail_helper(manager: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """End the manager's stream as ``error`` when its ``with`` block is left by an exception.

    The manager keeps its helper stream in a private (name-mangled) attribute, so it is found
    by what it holds: the one attribute value whose ``_raw_stream`` is one of our proxies.
    """
    try:
        exc = args[1] if len(args) > 1 else kwargs.get("exc")
        if not isinstance(exc, BaseException):
            return
        for value in vars(manager).values():
            state = stream_state_of(getattr(value, "_raw_stream", None))
            if state is not None:
                state.end(STREAM_END_ERROR, exc)
                return
    except Exception as error:
        contain("stream helper exit", error)


def _end_helper(instance: Any) -> None:
    state = stream_state_of(getattr(instance, "_raw_stream", None))
    if state is not None:
        state.end(STREAM_END_CLOSED)


def helper_close(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _end_helper(instance)


async def helper_aclose(
    wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _end_helper(instance)
