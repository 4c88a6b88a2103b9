"""Lazy public names for a package's ``__init__`` (PEP 562), so importing the package costs only
what a user touches: ``rlm_toolkit`` (imported by the ``rlm-instrument`` bootstrap in every
process it starts), ``rlm_toolkit.genai`` and ``rlm_toolkit.callbacks``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``: a name in ``table`` (name -> module) is
    imported from its module on first access and kept in ``namespace`` (the package's
    ``globals()``), so later accesses are plain attribute reads. Any other missing name raises
    ``AttributeError`` as Python does."""
    names = frozenset(public)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | names)

    return __getattr__, __dir__
