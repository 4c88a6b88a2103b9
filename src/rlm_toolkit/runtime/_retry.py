"""Retry policy, applied through the ``openai`` SDK's own retry loop.

The SDK already retries (connection errors, 408/409/429/5xx, honouring ``Retry-After``); the
instrumentation reports every retry of that loop as an ``rlm.retry`` event on the ONE logical
LLM span. So the runtime does not loop itself: it sets the client's ``max_retries`` and gives
the client a small subclass whose ``_calculate_retry_timeout`` applies the policy's backoff.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

_log = logging.getLogger("rlm_toolkit")

#: The SDK's ceiling for a server-directed delay; a longer ``Retry-After`` is not retried at all.
_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How the runtime's client retries a failed request.

    ``max_retries`` retries after the first attempt; the n-th retry (0-based) waits
    ``min(initial_delay * 2**n, max_delay)`` seconds, reduced by a random share of up to
    ``jitter`` (0.25 = up to 25 % shorter). With ``respect_retry_after`` a server's
    ``Retry-After`` (up to 60 s) is used instead. The defaults equal the SDK's own.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(f"RetryPolicy.max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"RetryPolicy.max_retries must be >= 0, got {self.max_retries}")
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter!r}")

    def delay(self, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        if (
            self.respect_retry_after
            and retry_after is not None
            and math.isfinite(retry_after)
            and 0 < retry_after <= _MAX_RETRY_AFTER
        ):
            return retry_after
        base = min(self.initial_delay * 2.0 ** min(retry_index, 1000), self.max_delay)
        return max(base * (1.0 - self.jitter * random.random()), 0.0)


def _policy_timeout(client: Any, remaining_retries: int, options: Any, headers: Any) -> float:
    policy: RetryPolicy = client._rlm_retry_policy
    max_retries = options.get_max_retries(client.max_retries)
    retry_after = client._parse_retry_after_header(headers) if policy.respect_retry_after else None
    return policy.delay(max_retries - remaining_retries, retry_after)


def _has_hook(base: type) -> bool:
    return callable(getattr(base, "_calculate_retry_timeout", None)) and callable(
        getattr(base, "_parse_retry_after_header", None)
    )


class _PolicyMixin:
    """Carries a :class:`RetryPolicy` across ``copy()``/``with_options()``."""

    _rlm_retry_policy: RetryPolicy

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        new = super().copy(*args, **kwargs)  # type: ignore[misc]
        new._rlm_retry_policy = self._rlm_retry_policy
        return new

    with_options = copy

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        delay = _policy_timeout(self, remaining_retries, options, response_headers)
        # This override hides the instrumentation's hook on the SDK method, so report the retry
        # (with the delay really used) through the instrumentor's seam for it. It never raises
        # and is a no-op when openai is not instrumented or no instrumented call is running.
        from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor.report_retry(self, delay, remaining_retries, options, response_headers)
        return delay


_CLASSES: dict[type, type] = {}


def _policy_class(base: type) -> type:
    # One subclass per SDK class, made once: creating many RLMs must not create classes.
    cls = _CLASSES.get(base)
    if cls is None:
        if _has_hook(base):
            cls = type(f"Retrying{base.__name__}", (_PolicyMixin, base), {"__module__": __name__})
        else:
            _log.debug("rlm_toolkit: openai %s has no _calculate_retry_timeout; using its backoff", base)
            cls = base
        _CLASSES[base] = cls
    return cls


def build_sync_client(policy: RetryPolicy, options: dict[str, Any]) -> openai.OpenAI:
    import openai

    client: openai.OpenAI = _policy_class(openai.OpenAI)(max_retries=policy.max_retries, **options)
    client._rlm_retry_policy = policy  # type: ignore[attr-defined]
    return client


def build_async_client(policy: RetryPolicy, options: dict[str, Any]) -> openai.AsyncOpenAI:
    import openai

    client: openai.AsyncOpenAI = _policy_class(openai.AsyncOpenAI)(max_retries=policy.max_retries, **options)
    client._rlm_retry_policy = policy  # type: ignore[attr-defined]
    return client
