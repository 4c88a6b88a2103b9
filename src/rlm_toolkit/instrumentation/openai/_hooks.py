"""Hooks on the SDK's request path and stream helpers (not user calls: they never start spans).

* ``BaseClient._build_request``: reads message content from the request body the SDK built
  (``FinalRequestOptions.json_data``) when the user's ``messages``/``input`` was a one-shot
  iterable, so the iterable reaches the SDK intact.
* ``BaseClient._calculate_retry_timeout``: the SDK calls it from ``_sleep_for_retry`` inside
  the ``except`` block of its retry loop, just before sleeping -- so the exception being retried
  is ``sys.exc_info()``, and the return value is the delay. One sync hook serves both clients.
* ``*StreamManager.__enter__``/``__aenter__``: label the inner ``create(stream=True)``.
* ``ChatCompletionStream.close``/``ResponseStream.close`` (sync/async): the helper closes the
  HTTP response directly, bypassing our stream proxy; end the proxy's span as ``closed``.
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
    RLM_RETRY_MAX_ATTEMPTS,
    STREAM_END_CLOSED,
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


def _retry_error(instance: Any, exc: BaseException | None) -> tuple[BaseException | None, int | None]:
    """The exception the SDK is retrying, as the SDK would raise it, and the HTTP status."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int) or response is None:
        return exc, None
    make = getattr(instance, "_make_status_error", None)
    if make is None:
        return exc, status
    try:
        return make(f"Error code: {status}", body=None, response=response), status
    except Exception:  # e.g. an SDK whose signature differs: keep the transport error
        return exc, status


def retry_timeout(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    delay = wrapped(*args, **kwargs)
    inv = CURRENT.get()
    if inv is None or inv.ended:
        return delay
    try:
        remaining = args[0] if args else kwargs["remaining_retries"]
        options = args[1] if len(args) > 1 else kwargs["options"]
        headers = args[2] if len(args) > 2 else kwargs.get("response_headers")
        max_retries = options.get_max_retries(instance.max_retries)
        error, status = _retry_error(instance, sys.exc_info()[1])
        attrs: dict[str, Any] = {
            RLM_RETRY_ATTEMPT: max_retries - remaining + 1,
            RLM_RETRY_MAX_ATTEMPTS: max_retries,
            RLM_RETRY_DELAY: float(delay),
        }
        if headers is not None:
            retry_after = instance._parse_retry_after_header(headers)
            if retry_after is not None:
                attrs[RLM_RETRY_AFTER] = float(retry_after)
        if status is not None:
            attrs[http_attributes.HTTP_RESPONSE_STATUS_CODE] = status
        if error is not None:
            attrs[error_attributes.ERROR_TYPE] = type(error).__qualname__
        inv.retry(attrs, error)
    except Exception as exc:
        contain("openai retry hook", exc)
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
