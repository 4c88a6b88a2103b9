"""The error paths a Stainless SDK's call wrappers share (``openai``, ``anthropic``): the
user's call raised, or our reading of its result did. Off the hot path: a call that succeeds
and is read without error never comes here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Invocation, TelemetryHandler


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


class HandlerWrappers:
    """A runtime provider's call wrappers, built once per handler: ``build(handler)`` gives the
    (sync, async) pair the first time a handler is seen. A run's handler is cached by its
    ``RLM``, so this holds a handful; past 32 (handlers of RLMs long gone) it starts over.
    Thread-safe; a hit takes no lock."""

    def __init__(self, build: Callable[[TelemetryHandler], tuple[Any, Any]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        # id(handler) -> (handler, sync wrapper, async wrapper); the handler pins its id.
        self._entries: dict[int, tuple[TelemetryHandler, Any, Any]] = {}

    def sync(self, handler: TelemetryHandler) -> Any:
        return self._entry(handler)[1]

    def async_(self, handler: TelemetryHandler) -> Any:
        return self._entry(handler)[2]

    def _entry(self, handler: TelemetryHandler) -> tuple[TelemetryHandler, Any, Any]:
        hit = self._entries.get(id(handler))
        if hit is not None and hit[0] is handler:
            return hit
        with self._lock:
            if len(self._entries) >= 32:
                self._entries.clear()
            entry = (handler, *self._build(handler))
            self._entries[id(handler)] = entry
        return entry
