"""The SDK's "argument not given" sentinels (``NotGiven`` in 1.x+, ``Omit`` in later versions)."""

from __future__ import annotations

from typing import Any


def _sentinel_types() -> tuple[type, ...]:
    types: list[type] = []
    try:
        from openai import _types
    except ImportError:  # pragma: no cover - openai is a dependency
        return ()
    for name in ("NotGiven", "Omit"):
        cls = getattr(_types, name, None)
        if isinstance(cls, type):
            types.append(cls)
    return tuple(types)


_SENTINELS = _sentinel_types()


def is_given(value: Any) -> bool:
    """False for the SDK's ``NOT_GIVEN``/``omit`` placeholders."""
    return type(value) not in _SENTINELS
