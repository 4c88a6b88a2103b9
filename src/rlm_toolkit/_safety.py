"""The one place that contains rlm-toolkit's own errors.

Instrumentation must never break the host application: our failures are logged at debug
level and swallowed. Under pytest (or with ``RLM_TOOLKIT_STRICT=1``) they are re-raised, so a
bug in our code fails the test that exercised it instead of hiding.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger("rlm_toolkit")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _strict() -> bool:
    # RLM_TOOLKIT_STRICT=0 lets a test check that an injected internal error is swallowed.
    flag = os.environ.get("RLM_TOOLKIT_STRICT")
    if flag is not None:
        return flag == "1"
    return "pytest" in sys.modules


def contain(what: str, exc: BaseException) -> None:
    """Record an internal failure in ``what``; re-raise only in strict (test) mode.

    Call from an ``except Exception`` block that wraps *our* code, never the user's call.
    """
    logger.debug("rlm_toolkit: %s failed", what, exc_info=exc)
    if _strict():
        raise exc


def guarded(what: str, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
    """Run ``fn``; on an internal error, log through :func:`contain` and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        contain(what, exc)
        return None
