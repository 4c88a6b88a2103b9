"""The clients ``RLM.from_anthropic`` builds: the run's retry policy applied through the SDK's
own retry loop, each retry reported through the instrumentation's retry hooks, the SDK's own
tracing off (the SDK-span gate covers any other client).

The SDK's retry loop is the same Stainless design as ``openai``'s: a client subclass whose
``_calculate_retry_timeout`` returns the policy's delay (Retry-After honoured when the policy
says so). That override hides the hook on the base method, so it hands the delay it chose to
``_hooks.report_delay``, which reports the retry the SDK is sleeping for on the running call's
invocation (``rlm.retry`` event and log record, ``rlm.request.attempts``, the retries counter,
``on_retry``) exactly as for an instrumented app's call.
"""

from __future__ import annotations

from typing import Any

from rlm_toolkit.instrumentation.anthropic._hooks import report_delay

#: ``max_tokens`` of a run's calls when ``from_anthropic`` is given none (the API requires one).
DEFAULT_MAX_TOKENS = 4096


def built(base: type, policy: Any, options: dict[str, Any]) -> Any:
    options = dict(options)
    max_tokens = options.pop("max_tokens", DEFAULT_MAX_TOKENS)
    client = _policy_class(base)(max_retries=policy.max_retries, open_telemetry=False, **options)
    client._rlm_retry_policy = policy
    client._rlm_max_tokens = max_tokens
    return client


class _PolicyMixin:
    """The run's retry policy, carried across ``copy()``/``with_options()``."""

    _rlm_retry_policy: Any
    _rlm_max_tokens: int

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        new = super().copy(*args, **kwargs)  # type: ignore[misc]
        new._rlm_retry_policy = self._rlm_retry_policy
        new._rlm_max_tokens = self._rlm_max_tokens
        return new

    with_options = copy

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
        report_delay(delay)  # no-op outside a retry sleep of a reported call; never raises
        return delay


_CLASSES: dict[type, type] = {}


def _policy_class(base: type) -> type:
    """``base`` with the retry policy applied (one subclass per SDK class, made once)."""
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(f"Retrying{base.__name__}", (_PolicyMixin, base), {"__module__": __name__})
        _CLASSES[base] = cls
    return cls
