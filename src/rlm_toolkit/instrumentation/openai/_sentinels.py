"""The SDK's "argument not given" sentinels (``NotGiven`` in 1.x+, ``Omit`` in later versions).

Resolved on first use, not at import: importing the instrumentation (e.g. for ``RLM``'s
provider) must not import ``openai`` itself (≈0.4 s); by the first check a call is running, so
the SDK is imported already.
"""

from __future__ import annotations

from typing import Any

_SENTINELS: tuple[type, ...] | None = None


def _sentinel_types() -> tuple[type, ...]:
    global _SENTINELS
    types: list[type] = []
    try:
        from openai import _types
    except ImportError:  # pragma: no cover - openai is a dependency
        _SENTINELS = ()
        return ()
    for name in ("NotGiven", "Omit"):
        cls = getattr(_types, name, None)
        if isinstance(cls, type):
            types.append(cls)
    _SENTINELS = tuple(types)
    return _SENTINELS


def is_given(value: Any) -> bool:
    """False for the SDK's ``NOT_GIVEN``/``omit`` placeholders."""
    sentinels = _SENTINELS
    if sentinels is None:
        sentinels = _sentinel_types()
    return type(value) not in sentinels
