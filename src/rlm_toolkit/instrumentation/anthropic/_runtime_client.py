"""The clients ``RLM.from_anthropic`` builds: the run's retry policy applied through the SDK's
own retry loop, each retry reported on the running call's invocation, the SDK's tracing off.

The SDK's retry loop is the same Stainless design as ``openai``'s: a client subclass whose
``_calculate_retry_timeout`` returns the policy's delay (Retry-After honoured when the policy
says so) and reports the retry (``rlm.retry`` event and log record, ``rlm.request.attempts``,
the retries counter, ``on_retry``). A retried error status is handled outside any ``except``
in the SDK (``sys.exc_info()`` is empty then), so ``_should_retry`` notes the response for the
report; the SDK closes it unread, so its ``error.type`` is Anthropic's envelope type for the
status.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import Any

from opentelemetry.semconv.attributes import error_attributes, http_attributes

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    RLM_RETRY_AFTER,
    RLM_RETRY_ATTEMPT,
    RLM_RETRY_DELAY,
    RLM_RETRY_MAX_RETRIES,
)
from rlm_toolkit.instrumentation.anthropic._response import error_type

# The invocation whose SDK call is running in this context: the process-wide instrumentation's
# own marker, so while a run's call runs its wrapper steps aside and the SDK's span gate holds
# (one span per call when the app also instruments the SDK), and the retry hook finds the call.
from rlm_toolkit.instrumentation.anthropic._wrappers import CURRENT

#: ``max_tokens`` of a run's calls when ``from_anthropic`` is given none (the API requires one).
DEFAULT_MAX_TOKENS = 4096

#: The error-status response the SDK just decided to retry (its retry of a status is made
#: outside any ``except``: ``sys.exc_info()`` is empty then).
_RETRIED: ContextVar[Any] = ContextVar("rlm_toolkit.anthropic.retried", default=None)
#: Anthropic's error envelope ``type`` by HTTP status (docs: "Errors"), for a retried response
#: whose body the SDK has not read (it is closed unread before the retry).
_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def built(base: type, policy: Any, options: dict[str, Any]) -> Any:
    options = dict(options)
    max_tokens = options.pop("max_tokens", DEFAULT_MAX_TOKENS)
    client = _policy_class(base)(max_retries=policy.max_retries, open_telemetry=False, **options)
    client._rlm_retry_policy = policy
    client._rlm_max_tokens = max_tokens
    client._rlm_untraced = True
    return client


def _retry_error(
    client: Any, exc: BaseException | None
) -> tuple[BaseException | None, int | None, str | None]:
    """The error the SDK is retrying (as it would raise it), the HTTP status, ``error.type``."""
    response = getattr(exc, "response", None) if exc is not None else _RETRIED.get()
    _RETRIED.set(None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and response is not None:
        try:
            error: BaseException = client._make_status_error(
                f"Error code: {status}", body=None, response=response
            )
        except Exception:  # an SDK without it: the transport's exception will do
            error = exc if exc is not None else RuntimeError(f"Error code: {status}")
        return error, status, _STATUS_TYPES.get(status) or type(error).__qualname__
    return exc, None, error_type(exc) if exc is not None else None


def report_retry(client: Any, delay: float, remaining_retries: int, options: Any, headers: Any) -> None:
    """The SDK will retry the running call after ``delay`` s: ``rlm.retry`` event, attempts
    and retries counter on its invocation. Called inside the SDK's retry loop (the exception
    being retried is ``sys.exc_info()``); no-op outside a run's call; never raises."""
    inv = CURRENT.get()
    if inv is None or inv.ended:
        return
    try:
        max_retries = options.get_max_retries(client.max_retries)
        error, status, kind = _retry_error(client, sys.exc_info()[1])
        attrs: dict[str, Any] = {
            RLM_RETRY_ATTEMPT: max_retries - remaining_retries + 1,
            RLM_RETRY_MAX_RETRIES: max_retries,
            RLM_RETRY_DELAY: float(delay),
        }
        if headers is not None:
            retry_after = client._parse_retry_after_header(headers)
            if retry_after is not None:
                attrs[RLM_RETRY_AFTER] = float(retry_after)
        if status is not None:
            attrs[http_attributes.HTTP_RESPONSE_STATUS_CODE] = status
        if kind is not None:
            attrs[error_attributes.ERROR_TYPE] = kind
        inv.retry(attrs, error)
    except Exception as exc:
        contain("anthropic runtime retry", exc)


class _PolicyMixin:
    """The run's retry policy, carried across ``copy()``/``with_options()``."""

    _rlm_retry_policy: Any
    _rlm_max_tokens: int
    _rlm_untraced: bool

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        new = super().copy(*args, **kwargs)  # type: ignore[misc]
        new._rlm_retry_policy = self._rlm_retry_policy
        new._rlm_max_tokens = self._rlm_max_tokens
        new._rlm_untraced = self._rlm_untraced and kwargs.get("open_telemetry", False) is False
        return new

    with_options = copy

    def _should_retry(self, response: Any) -> bool:
        retry: bool = super()._should_retry(response)  # type: ignore[misc]
        if retry and CURRENT.get() is not None:
            _RETRIED.set(response)  # read (and dropped) by the retry report just after
        return retry

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        policy = self._rlm_retry_policy
        max_retries = options.get_max_retries(self.max_retries)  # type: ignore[attr-defined]
        retry_after = (
            self._parse_retry_after_header(response_headers)  # type: ignore[attr-defined]
            if policy.respect_retry_after
            else None
        )
        delay: float = policy.delay(max_retries - remaining_retries, retry_after)
        report_retry(self, delay, remaining_retries, options, response_headers)
        return delay


_CLASSES: dict[type, type] = {}


def _policy_class(base: type) -> type:
    """``base`` with the retry policy applied (one subclass per SDK class, made once)."""
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(f"Retrying{base.__name__}", (_PolicyMixin, base), {"__module__": __name__})
        _CLASSES[base] = cls
    return cls
