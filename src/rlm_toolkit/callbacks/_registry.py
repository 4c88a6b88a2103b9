"""Process-wide state of the bridge: the global callbacks and the live-span lookup.

Global callbacks (``instrument(callbacks=...)``) live in one tuple replaced under a lock, so a
processor reads them with a single attribute load and never sees a half-updated list.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor, SpanEntry

_lock = threading.RLock()  # reentrant: see _dispatch
_global: tuple[Any, ...] = ()
# Every live CallbackSpanProcessor, so an event record can find the span it belongs to.
_span_processors: weakref.WeakSet[CallbackSpanProcessor] = weakref.WeakSet()


def global_callbacks() -> tuple[Any, ...]:
    return _global


def replace_global_callbacks(callbacks: tuple[Any, ...]) -> None:
    global _global
    with _lock:
        _global = callbacks


def register_span_processor(processor: CallbackSpanProcessor) -> None:
    with _lock:
        _span_processors.add(processor)


def find_span(span_id: int) -> SpanEntry | None:
    """The live entry some span processor holds for ``span_id`` (an unended span with callbacks)."""
    if not span_id:
        return None
    with _lock:
        processors = list(_span_processors)
    for processor in processors:
        entry = processor.entry(span_id)
        if entry is not None:
            return entry
    return None
