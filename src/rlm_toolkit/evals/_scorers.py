"""Scorers: ``exact``, ``contains``, ``numeric`` (``numeric:TOL``) and ``module:function``.

A scorer maps (the model's answer, the expected answer) to a score in [0, 1] and a label.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from typing import Any

#: (answer, expected) -> score (bool or float in [0, 1]).
ScoreFn = Callable[[str, str], Any]

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _norm(text: str) -> str:
    return " ".join(text.strip().casefold().split()).rstrip(".")


def exact(answer: str, expected: str) -> float:
    """1.0 when equal ignoring case, surrounding space and a final period."""
    return 1.0 if _norm(answer) == _norm(expected) else 0.0


def contains(answer: str, expected: str) -> float:
    """1.0 when ``expected`` appears in ``answer`` (case-insensitive)."""
    return 1.0 if _norm(expected) in _norm(answer) else 0.0


def numeric(answer: str, expected: str, tolerance: float = 0.0) -> float:
    """1.0 when a number in ``answer`` is within ``tolerance`` (relative) of ``expected``."""
    try:
        want = float(expected.replace(",", ""))
    except ValueError:
        return 0.0
    for match in _NUMBER.findall(answer):
        try:
            got = float(match.replace(",", ""))
        except ValueError:
            continue
        if math.isclose(got, want, rel_tol=tolerance, abs_tol=0.0 if want else tolerance):
            return 1.0
    return 0.0


def check_scorer(spec: Any) -> str | None:
    """None when ``spec`` names a scorer, else a one-line problem and fix."""
    if not isinstance(spec, str) or not spec:
        return f"scorer must be a string, got {spec!r}; use exact, contains, numeric[:TOL] or module:function"
    if spec in ("exact", "contains", "numeric"):
        return None
    if spec.startswith("numeric:"):
        try:
            tol = float(spec.partition(":")[2])
        except ValueError:
            tol = -1.0
        return None if tol >= 0 else f"bad tolerance in scorer {spec!r}; use e.g. numeric:0.01"
    module, sep, name = spec.partition(":")
    if not sep or not module or not name.isidentifier():
        return f"unknown scorer {spec!r}; use exact, contains, numeric[:TOL] or module:function"
    try:
        fn = getattr(importlib.import_module(module), name, None)
    except ImportError as exc:
        return f"scorer {spec!r}: cannot import {module!r} ({exc}); check the module is on PYTHONPATH"
    return None if callable(fn) else f"scorer {spec!r}: {module} has no function {name!r}"


def resolve_scorer(spec: str) -> ScoreFn:
    """The scoring function ``spec`` names (checked by :func:`check_scorer`)."""
    if spec == "exact":
        return exact
    if spec == "contains":
        return contains
    if spec == "numeric":
        return numeric
    if spec.startswith("numeric:"):
        tol = float(spec.partition(":")[2])
        return lambda answer, expected: numeric(answer, expected, tol)
    module, _, name = spec.partition(":")
    fn: ScoreFn = getattr(importlib.import_module(module), name)
    return fn


def score(spec: str, answer: str, expected: str) -> float:
    """``spec``'s score of ``answer`` against ``expected``, as a float in [0, 1]."""
    value = resolve_scorer(spec)(answer, expected)
    return float(min(max(float(value), 0.0), 1.0))
