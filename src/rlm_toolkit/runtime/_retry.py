"""Retry policy, applied through the SDK's own retry loop.

The SDK already retries (connection errors, 408/409/429/5xx, honouring ``Retry-After``); every
retry of that loop is reported as an ``rlm.retry`` event on the ONE logical LLM span. So the
runtime does not loop itself: its model provider (``ModelProvider.sync_client`` /
``async_client``; for ``openai`` a small client subclass) applies this policy's backoff.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

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
