"""The entrance the instrumentation and the runtime use to feed callbacks.

``ensure_pipeline`` picks SDK providers (the ones given, else the global SDK ones, else one
private in-process pair with no exporters) and attaches one callback processor to each provider,
once. ``validate_callbacks`` checks user input early, with a message that names the culprit.
``set_global_callbacks`` installs process-wide callbacks (``instrument(callbacks=...)``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Tracer

from rlm_toolkit.callbacks import _registry
from rlm_toolkit.callbacks._base import EVENT_METHODS, BaseCallback, is_noop
from rlm_toolkit.callbacks._log_processor import CallbackLogRecordProcessor
from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor
from rlm_toolkit.genai._context import consumers
from rlm_toolkit.version import __version__

__all__ = ["Pipeline", "ensure_pipeline", "set_global_callbacks", "validate_callbacks", "wants_tokens"]

_INSTRUMENTATION_NAME = "rlm_toolkit"


@dataclass(frozen=True)
class Pipeline:
    """SDK providers whose spans and event records reach callbacks, with our tracer/logger."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    tracer: Tracer
    logger: Logger


# Reentrant: a span may end on this thread (and re-enter us) while it holds the lock; the lookups below are repeated after each allocation-heavy step so a reentrant call that
# attached a processor first is not doubled.
_lock = threading.RLock()
# provider -> (its callback processor, our tracer/logger). Weak: a provider the app drops is
# not kept alive here, and calling ensure_pipeline for the same provider adds nothing.
_span_side: weakref.WeakKeyDictionary[TracerProvider, tuple[CallbackSpanProcessor, Tracer]] = (
    weakref.WeakKeyDictionary()
)
_log_side: weakref.WeakKeyDictionary[LoggerProvider, tuple[CallbackLogRecordProcessor, Logger]] = (
    weakref.WeakKeyDictionary()
)
_private: tuple[TracerProvider, LoggerProvider] | None = None


def _private_pair() -> tuple[TracerProvider, LoggerProvider]:
    global _private
    if _private is None:
        # Only callbacks read these: sample everything, export nothing, skip resource detection.
        resource = Resource.get_empty()
        _private = (TracerProvider(sampler=ALWAYS_ON, resource=resource), LoggerProvider(resource=resource))
    return _private


def _pick_tracer_provider(given: object) -> TracerProvider:
    if isinstance(given, TracerProvider):
        return given
    global_provider = trace.get_tracer_provider()
    if isinstance(global_provider, TracerProvider):
        return global_provider
    return _private_pair()[0]


def _pick_logger_provider(given: object) -> LoggerProvider:
    if isinstance(given, LoggerProvider):
        return given
    global_provider = get_logger_provider()
    if isinstance(global_provider, LoggerProvider):
        return global_provider
    return _private_pair()[1]


def ensure_pipeline(tracer_provider: object = None, logger_provider: object = None) -> Pipeline:
    """SDK providers that feed callbacks, each with its callback processor attached once."""
    with _lock:
        tp = _pick_tracer_provider(tracer_provider)
        lp = _pick_logger_provider(logger_provider)
        span_side = _span_side.get(tp)
        if span_side is None:
            made = (CallbackSpanProcessor(), tp.get_tracer(_INSTRUMENTATION_NAME, __version__))
            span_side = _span_side.get(tp)  # again: see _lock
            if span_side is None:
                _span_side[tp] = span_side = made  # recorded first, so a reentrant call reuses it
                tp.add_span_processor(made[0])
        log_side = _log_side.get(lp)
        if log_side is None:
            made_log = (CallbackLogRecordProcessor(), lp.get_logger(_INSTRUMENTATION_NAME, __version__))
            log_side = _log_side.get(lp)
            if log_side is None:
                _log_side[lp] = log_side = made_log
                lp.add_log_record_processor(made_log[0])
        consumers.active = True
    return Pipeline(tracer_provider=tp, logger_provider=lp, tracer=span_side[1], logger=log_side[1])


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


def set_global_callbacks(callbacks: Iterable[Any] | None) -> tuple[Any, ...]:
    """Make ``callbacks`` see every GenAI span and event in the process (``()`` removes them)."""
    validated = validate_callbacks(callbacks)
    _registry.replace_global_callbacks(validated)
    consumers.global_wants_tokens = wants_tokens(validated)
    return validated


def global_callbacks() -> tuple[Any, ...]:
    return _registry.global_callbacks()
