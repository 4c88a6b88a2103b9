"""Once per failure: ``on_error`` fires on the innermost span that failed with an error.

When a call fails inside a run, both spans fail: the ``chat`` span and the ``invoke_agent``
span around it. Callbacks must hear about that failure once, from the innermost span. So when
a span reports a failure, the failure is handed up to its parent span (while the parent is
live), and when an ancestor ends failed with the *same* failure, callbacks already told are
not told again.

"The same failure" is:

* the same exception object, when both sides know it in-process (the payload's ``error``),
  or an exception whose ``__cause__`` chain holds it (``raise Wrapper(...) from err``);
* otherwise (a span from another instrumentation or process): the same ``error.type`` and the
  same exception message, where a side that records no message (a status description that is
  only the type name) matches on the type alone.

The state is bounded: failures are kept only under span ids of live spans (the processor) or
in a capped table (the exporter, which cannot know whether a parent will ever arrive), and
each span's list is capped too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes import error_attributes, exception_attributes

_EXCEPTION_EVENT = "exception"
_PER_SPAN = 16  # failures kept per waiting span (a parent of many failed children keeps the last ones)
_CAUSE_DEPTH = 8


@dataclass(frozen=True)
class Failure:
    """One failure already reported to ``notified`` (callbacks that got ``on_error`` for it)."""

    error: BaseException | None  # the in-process exception, when known
    error_type: str | None
    message: str | None
    notified: tuple[Any, ...]


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def describe(span: ReadableSpan) -> tuple[str | None, str | None]:
    """``(error type, exception message)`` of a failed span, from its telemetry only."""
    attrs: Mapping[str, Any] = span.attributes or {}
    error_type = attrs.get(error_attributes.ERROR_TYPE)
    message: object = None
    for event in reversed(span.events):
        if event.name == _EXCEPTION_EVENT:
            ev: Mapping[str, Any] = event.attributes or {}
            if not isinstance(error_type, str):
                error_type = ev.get(exception_attributes.EXCEPTION_TYPE)
            message = ev.get(exception_attributes.EXCEPTION_MESSAGE)
            break
    type_name = error_type if isinstance(error_type, str) and error_type else None
    if not isinstance(message, str):
        message = _message_from_status(span.status.description, type_name)
    return type_name, (message or None) if isinstance(message, str) else None


def _message_from_status(description: str | None, type_name: str | None) -> str | None:
    """The message part of a status description (``"Type: msg"`` -> ``msg``; ``"Type"`` -> None)."""
    if not description or type_name is None:
        return description or None
    names = {type_name, _short(type_name)}
    if description in names:
        return None
    for name in names:
        if description.startswith(name + ": "):
            return description[len(name) + 2 :]
    return description


def _caused_by(error: BaseException, candidate: BaseException) -> bool:
    current: BaseException | None = error
    for _ in range(_CAUSE_DEPTH):
        if current is None:
            return False
        if current is candidate:
            return True
        current = current.__cause__
    return False


def same_failure(mine: Failure, earlier: Failure) -> bool:
    """Does ``mine`` (an ancestor's failure) repeat ``earlier`` (a descendant's)?"""
    if mine.error is not None and earlier.error is not None:
        return _caused_by(mine.error, earlier.error)
    if mine.error_type is None or earlier.error_type is None:
        if mine.error_type is not earlier.error_type:  # one side typed, the other not
            return False
    elif _short(mine.error_type) != _short(earlier.error_type):
        return False
    return mine.message is None or earlier.message is None or mine.message == earlier.message


def already_told(mine: Failure, earlier: Iterable[Failure]) -> tuple[Any, ...]:
    """Callbacks that already got ``on_error`` for ``mine`` from a descendant span."""
    told: list[Any] = []
    for failure in earlier:
        if same_failure(mine, failure):
            told.extend(cb for cb in failure.notified if not any(cb is t for t in told))
    return tuple(told)


def not_in(callbacks: tuple[Any, ...], told: tuple[Any, ...]) -> tuple[Any, ...]:
    if not told:
        return callbacks
    return tuple(cb for cb in callbacks if not any(cb is t for t in told))


class FailureTable:
    """Failures reported under a span, waiting for that span to end. Thread-safe.

    ``max_spans`` caps how many spans may have failures waiting (oldest dropped first); the
    processor needs no cap (it only files under live spans) but keeps one as a safety net.
    """

    def __init__(self, max_spans: int = 4096) -> None:
        # Reentrant: a span may end on this thread (and so come back here) while it holds the
        # lock, e.g. from a signal handler.
        self._lock = threading.RLock()
        #: span id -> failures filed under it (read without the lock: empty is the common case).
        self.waiting: OrderedDict[int, list[Failure]] = OrderedDict()
        self._max_spans = max_spans

    def __len__(self) -> int:
        return len(self.waiting)

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def take(self, span_id: int) -> list[Failure]:
        """Remove and return the failures filed under ``span_id``."""
        if not self.waiting:  # the common case: nothing failed, no lock
            return []
        with self._lock:
            return self.waiting.pop(span_id, None) or []

    def file(self, span_id: int, failures: list[Failure]) -> None:
        """File ``failures`` under ``span_id`` (the parent of the span that reported them)."""
        if not failures or not span_id:
            return
        with self._lock:
            waiting = self.waiting.get(span_id)
            if waiting is None:
                waiting = self.waiting[span_id] = []
                while len(self.waiting) > self._max_spans:
                    self.waiting.popitem(last=False)
            waiting.extend(failures)
            del waiting[:-_PER_SPAN]

    def clear(self) -> None:
        with self._lock:
            self.waiting.clear()
