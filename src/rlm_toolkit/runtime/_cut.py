"""When a streamed call cut mid-reply is retried (#22.9): what every provider shares.

The SDKs retry a dropped connection or an overloaded server before the first byte, inside
their retry loop; once a stream's body is arriving they hand the failure to the caller. The
runtime retries such a cut with the client's own policy: ``max_retries`` retries, the delays
of the run's :class:`~rlm_toolkit.runtime.RetryPolicy` (or the SDK's default backoff for a
client the user built). The policy is duck-typed (``max_retries``, ``delay(index, retry_after)``)
so providers need no runtime type.
"""

from __future__ import annotations

from typing import Any

#: The SDKs' default backoff (Stainless clients): 0.5 s doubling, at most 8 s.
_INITIAL_S = 0.5
_MAX_S = 8.0
#: Exception classes (by name, anywhere in the MRO) that mean the connection failed: httpx's
#: ``TransportError`` (reset, protocol error, read timeout) and the SDKs' ``APIConnectionError``.
_TRANSPORT = frozenset({"TransportError", "APIConnectionError"})


def is_transport_error(exc: BaseException) -> bool:
    """``exc`` says the connection failed (not the API: a cut, a reset, a read timeout)."""
    return any(cls.__name__ in _TRANSPORT for cls in type(exc).__mro__)


def cut_retry_delay(client: Any, retries: int) -> float | None:
    """The delay before retry ``retries`` (0-based) of a cut stream made with ``client``, or
    None when its policy allows no more. Never raises."""
    try:
        policy = getattr(client, "_rlm_retry_policy", None)
        max_retries = policy.max_retries if policy is not None else client.max_retries
        if not isinstance(max_retries, int) or retries >= max_retries:
            return None
        if policy is not None:
            return float(policy.delay(retries, None))
        return float(min(_INITIAL_S * 2.0**retries, _MAX_S))
    except Exception:  # a client without max_retries: no retry (the SDK's own behaviour)
        return None
