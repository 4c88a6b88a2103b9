"""The one place that contains rlm-toolkit's own errors.

Instrumentation must never break the host application: our failures are logged at debug
level and swallowed. With ``RLM_TOOLKIT_STRICT=1`` they are re-raised instead, so a bug in our
code fails the test that exercised it; the project's own test suite sets it (tests/conftest.py).
It is deliberately *not* keyed on "running under pytest": users test their own apps with pytest,
and our bugs must never fail their tests.
"""

from __future__ import annotations

import logging
import os

from rlm_toolkit.environment_variables import RLM_TOOLKIT_STRICT

logger = logging.getLogger("rlm_toolkit")


def _strict() -> bool:
    return os.environ.get(RLM_TOOLKIT_STRICT) == "1"


def contain(what: str, exc: BaseException) -> None:
    """Record an internal failure in ``what``; re-raise only in strict (test) mode.

    Call from an ``except Exception`` block that wraps *our* code, never the user's call.
    """
    logger.debug("rlm_toolkit: %s failed", what, exc_info=exc)
    if _strict():
        raise exc
