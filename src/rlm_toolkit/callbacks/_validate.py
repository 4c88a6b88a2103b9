"""Checking callbacks given by the user, and whether they want token events.

Its own module so that the processors, the entrances and the runtime share it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rlm_toolkit.callbacks._base import EVENT_METHODS, BaseCallback, is_noop

__all__ = ["validate_callbacks", "wants_tokens"]


def validate_callbacks(callbacks: Iterable[Any] | None) -> tuple[Any, ...]:
    """``callbacks`` as a tuple, or ``TypeError`` naming the first one that is not a callback.

    A callback is a :class:`BaseCallback` or any object with at least one ``on_*`` event method.
    """
    if callbacks is None:
        return ()
    if isinstance(callbacks, (str, bytes, BaseCallback)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks)!r}; pass [callback]")
    out = tuple(callbacks)
    for index, cb in enumerate(out):
        if isinstance(cb, type):
            raise TypeError(
                f"callback {index} is the class {cb.__qualname__}, not an instance; pass {cb.__qualname__}()"
            )
        if isinstance(cb, BaseCallback):
            continue
        if not any(callable(getattr(cb, name, None)) for name in EVENT_METHODS):
            raise TypeError(
                f"callback {index} ({type(cb)!r}) is not a BaseCallback and defines no on_* methods; "
                "subclass rlm_toolkit.callbacks.BaseCallback"
            )
    return out


def wants_tokens(callbacks: Iterable[Any]) -> bool:
    """True when some callback would do something with ``on_token``.

    (Token events cost one log record per streamed delta, so producers emit them only then.)
    """
    for cb in callbacks:
        # Built-ins that may or may not use tokens (StreamingCallback without a handler,
        # ConsoleCallback without show_tokens) say so through a ``wants_tokens`` property.
        declared = getattr(type(cb), "wants_tokens", None)
        if isinstance(declared, (property, bool)):
            if cb.wants_tokens:
                return True
            continue
        if isinstance(cb, BaseCallback):
            if not is_noop(type(cb), "on_token") or "on_token" in getattr(cb, "__dict__", ()):
                return True
            continue
        if callable(getattr(cb, "on_token", None)):
            return True
    return False
