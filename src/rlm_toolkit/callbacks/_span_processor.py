"""``CallbackSpanProcessor``: GenAI span start/end -> callback events, on the app's thread.

SpanProcessors are synchronous by contract, so callbacks run on the thread that starts or ends
the span. That is what makes ``on_llm_start`` timing and live streaming UIs work. To decouple
slow callbacks from the app, put a :class:`~rlm_toolkit.callbacks.CallbackSpanExporter` behind
a ``BatchSpanProcessor`` instead (callbacks then run on the exporter thread, from attributes).

Routing: in ``on_start`` the processor reads ``current_scope()`` (it runs on the starting
thread) and stores, keyed by span id, the callbacks that see this span (its own fixed ones,
the global ones and the scope's). ``on_end`` pops the entry, so the per-span dict holds only
spans that are live right now. No context is attached across start/end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as g

from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract, _registry
from rlm_toolkit.genai._context import current_payload, current_scope


@dataclass(frozen=True)
class SpanEntry:
    """What the processor remembers about one live span."""

    callbacks: tuple[Any, ...]
    operation: str
    model: str | None


def merge(*groups: Sequence[Any]) -> tuple[Any, ...]:
    """Concatenate callback groups, dropping repeats of the same object (first one wins)."""
    if sum(1 for group in groups if group) <= 1:
        for group in groups:
            if group:
                return tuple(group)
        return ()
    seen: set[int] = set()
    out: list[Any] = []
    for group in groups:
        for cb in group:
            if id(cb) not in seen:
                seen.add(id(cb))
                out.append(cb)
    return tuple(out)


def routed_callbacks(fixed: tuple[Any, ...]) -> tuple[Any, ...]:
    """Callbacks that see what happens right here: fixed + global + the current scope's."""
    scope = current_scope()
    return merge(fixed, _registry.global_callbacks(), scope.callbacks if scope is not None else ())


class CallbackSpanProcessor(SpanProcessor):
    """Feeds GenAI spans (``chat``, ``text_completion``, ``generate_content``, ``embeddings``,
    ``execute_tool``, ``invoke_agent``) to callbacks.

    ``callbacks`` given here see every such span of the provider; global callbacks
    (``instrument(callbacks=...)``) and the current ``Scope``'s are added per span.
    """

    def __init__(self, callbacks: Sequence[Any] = ()) -> None:
        from rlm_toolkit.callbacks._bridge import validate_callbacks

        self._fixed = validate_callbacks(callbacks)
        self._spans: dict[int, SpanEntry] = {}
        _registry.register_span_processor(self)

    def entry(self, span_id: int) -> SpanEntry | None:
        return self._spans.get(span_id)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attrs = span.attributes or {}
            operation = attrs.get(g.GEN_AI_OPERATION_NAME)
            if not isinstance(operation, str) or _extract.kind(operation) is None:
                return
            callbacks = routed_callbacks(self._fixed)
            if not callbacks:
                return
            model = attrs.get(g.GEN_AI_REQUEST_MODEL)
            self._spans[span.context.span_id] = SpanEntry(
                callbacks, operation, model if isinstance(model, str) else None
            )
            name, kwargs = _extract.start_event(span, current_payload(), operation)
        except Exception as exc:
            contain("CallbackSpanProcessor.on_start", exc)
            return
        for cb in callbacks:
            _dispatch.call(cb, name, kwargs)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        entry = self._spans.pop(context.span_id, None)
        if entry is None:
            return
        try:
            name, kwargs = _extract.end_event(span, current_payload(), entry.operation)
        except Exception as exc:
            contain("CallbackSpanProcessor.on_end", exc)
            return
        for cb in entry.callbacks:
            _dispatch.call(cb, name, kwargs)

    def shutdown(self) -> None:
        self._spans.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for async callbacks still running on the background loop."""
        return _dispatch.flush(timeout_millis / 1000)
