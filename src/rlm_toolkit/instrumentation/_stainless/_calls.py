"""The error paths a Stainless SDK's call wrappers share (``openai``, ``anthropic``): the
user's call raised, or our reading of its result did. Off the hot path: a call that succeeds
and is read without error never comes here."""

from __future__ import annotations

from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Invocation


def fail(inv: Invocation, exc: BaseException) -> None:
    """The SDK call raised ``exc`` (re-raised by the caller, unchanged): fail the invocation
    (``error.type`` the SDK's class, the provider's envelope fields beside it). Never raises."""
    try:
        inv.fail(exc)
    except Exception as error:
        contain("call fail", error)


def stop_anyway(inv: Invocation, result: Any, exc: Exception) -> None:
    """Reading the call's ``result`` raised ``exc`` (ours, contained): end the invocation
    with what it has, so the span still ends once. Never raises."""
    contain("call finish", exc)
    try:
        inv.stop(result)
    except Exception as error:
        contain("call stop", error)
