"""``CallbackSpanProcessor``: GenAI span start/end -> callback events, on the app's thread.

SpanProcessors are synchronous by contract, so callbacks run on the thread that starts or ends
the span. That is what makes ``on_llm_start`` timing and live streaming UIs work. To decouple
slow callbacks from the app, put a :class:`~rlm_toolkit.callbacks.CallbackSpanExporter` behind
a ``BatchSpanProcessor`` instead (callbacks then run on the exporter thread, from attributes).

Routing: in ``on_start`` the processor stores, keyed by span id, the callbacks that see this
span: its own (given at construction), plus -- for the one *routing* processor per provider
that ``ensure_router`` attaches -- the callbacks of the current ``Scope`` when that scope's
handler reports to this provider (it runs on the starting thread, so ``current_scope()`` is
the caller's). ``on_end`` pops the entry, so the per-span dict holds only spans that are live
right now. No context is attached across start/end.

The processor is a :class:`~rlm_toolkit.genai.Consumer`: the ``TelemetryHandler`` of the
provider it is attached to finds it there and asks ``wants_payload`` once per call.

Once per failure: ``on_error`` fires on the innermost span that failed; a failure is handed up
to the parent span while it is live (through spans of other kinds too), and an ancestor that
fails with the same error does not tell the same callbacks again (see ``_failures``). A failed
run span still ends with ``on_run_end(result=None, error=...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit._safety import contain
from rlm_toolkit.callbacks import _dispatch, _extract
from rlm_toolkit.callbacks._base import NOOPS
from rlm_toolkit.callbacks._dispatch import PLANS, AsyncDelivery, Plan, make_plan, plan_for, warn_once
from rlm_toolkit.callbacks._events import ABSENT, Event, Failed
from rlm_toolkit.callbacks._failures import Failure, FailureTable, already_told, describe, not_in
from rlm_toolkit.callbacks._validate import validate_callbacks
from rlm_toolkit.genai import Consumer
from rlm_toolkit.genai._context import PAYLOAD, Scope, current_scope


def call(cb: object, name: str, kwargs: Mapping[str, Any], owner: AsyncDelivery | None = None) -> None:
    """Call ``cb.name(**kwargs)`` (the subset it accepts), isolated. Never raises ``Exception``.

    Keywords only: a method without ``**kwargs`` gets just the keywords it names; one that
    needs an argument the event does not carry is skipped with a warning, logged once; one that
    raises is isolated (one warning per class and method). An awaitable result is run by
    ``owner`` (the delivering processor's ``AsyncDelivery``) without blocking this thread.
    """
    cls = type(cb)
    on_instance = name in getattr(cb, "__dict__", ())  # a function stored on the instance
    if not on_instance and getattr(cls, name, None) in NOOPS:  # a base's no-op: skip it
        return
    method = getattr(cb, name, None)
    if method is None or not callable(method):
        return
    plan: Plan | None = None
    if on_instance:
        plan = make_plan(method)
    else:  # the plan cache, read here: no call per delivery once a class is known
        per_class = PLANS.get(cls)
        plan = per_class.get(name) if per_class is not None else None
        if plan is None:
            plan = plan_for(cls, name, method)
    if plan.problem is not None:
        warn_once(cb, name, f"cannot be called with keyword arguments ({plan.problem}); skipped")
        return
    args = kwargs if plan.accepts_all else {k: v for k, v in kwargs.items() if k in plan.names}
    missing = plan.required.difference(args)
    if missing:
        warn_once(cb, name, f"needs {sorted(missing)} which this event does not provide; skipped")
        return
    try:
        result = method(**args)
    except Exception as exc:
        warn_once(cb, name, "raised", exc)
        return
    if inspect.isawaitable(result):
        (owner or _dispatch.SHARED).schedule(result, cb, name)


def deliver(callbacks: Sequence[object], event: Event, owner: AsyncDelivery | None = None) -> None:
    """Deliver one typed event to each of ``callbacks`` (its method, its keywords), isolated.

    The keywords (the event's fields, less those left ``ABSENT``) are built once for all
    callbacks. Runs on the caller's thread; never raises ``Exception``.
    """
    if not callbacks:
        return
    name = event.method
    kwargs = {k: v for k, v in vars(event).items() if v is not ABSENT}
    for cb in callbacks:
        call(cb, name, kwargs, owner)


@dataclass(frozen=True)
class SpanEntry:
    """What the processor remembers about one live span."""

    callbacks: tuple[Any, ...]
    operation: str
    model: str | None
    parent_id: int = 0
    #: The live span, for events that happen while it runs (``on_token``, ``on_retry``).
    span: Any = None


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


def scope_callbacks(scope: Scope | None, provider: object, of_logs: bool) -> tuple[Any, ...]:
    """The callbacks of ``scope`` when its handler reports to ``provider`` (else none), less
    those another processor on ``provider`` already feeds (each callback hears an event once)."""
    if scope is None or not scope.callbacks or scope.handler is None:
        return ()
    handler = scope.handler
    mine = handler.sdk_logger_provider() if of_logs else handler.sdk_tracer_provider()
    if mine is not provider:
        return ()
    span_side, log_side = handler.consumers()
    taken = {id(cb) for consumer in (log_side if of_logs else span_side) for cb in consumer.fixed_callbacks}
    if not taken:
        return tuple(scope.callbacks)
    return tuple(cb for cb in scope.callbacks if id(cb) not in taken)


class CallbackSpanProcessor(SpanProcessor, Consumer):
    """Feeds GenAI spans (``chat``, ``text_completion``, ``generate_content``, ``embeddings``,
    ``execute_tool``, ``invoke_agent``) to callbacks.

    Args:
        callbacks: see every such span of the provider this processor is added to (by
            ``TracerProvider.add_span_processor``, by hand or by ``instrument(callbacks=...)``).
        route_for: the provider this processor is the scope router of (set by
            ``ensure_router`` only): it then also delivers the current ``Scope``'s callbacks.

    ``on_start``/``on_end`` run on the thread that starts/ends the span and never raise; a
    raising callback is logged once and skipped. After ``shutdown()`` nothing is delivered.
    """

    def __init__(self, callbacks: Sequence[Any] = (), *, route_for: object = None) -> None:
        self._fixed = self.fixed_callbacks = validate_callbacks(callbacks)
        self._async = AsyncDelivery()  # this processor's async callbacks
        self._route_for = route_for
        self.routes_scopes = route_for is not None
        self.wants_payload = bool(self._fixed)
        self._spans: dict[int, SpanEntry] = {}
        # Live spans of other kinds under a live GenAI span (span id -> parent id), so a failure
        # reaches the run span through, say, an app's own span in between.
        self._links: dict[int, int] = {}
        self._failures = FailureTable()

    def entry(self, span_id: int) -> SpanEntry | None:
        return self._spans.get(span_id)

    def _live(self, span_id: int) -> bool:
        return span_id in self._spans or span_id in self._links

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attrs = span.attributes or {}
            operation = attrs.get(GA.GEN_AI_OPERATION_NAME)
            parent = span.parent
            parent_id = parent.span_id if parent is not None else 0
            if not isinstance(operation, str) or operation not in _extract.KINDS:  # no call per span
                if parent_id and (self._spans or self._links) and self._live(parent_id):
                    self._links[span.context.span_id] = parent_id
                return
            callbacks = self._fixed
            if self.routes_scopes:
                callbacks = merge(callbacks, scope_callbacks(current_scope(), self._route_for, False))
            if not callbacks:
                if parent_id and self._live(parent_id):
                    self._links[span.context.span_id] = parent_id
                return
            model = attrs.get(GA.GEN_AI_REQUEST_MODEL)
            self._spans[span.context.span_id] = SpanEntry(
                callbacks, operation, model if isinstance(model, str) else None, parent_id, span
            )
            event = _extract.start_event(span, PAYLOAD.get(), operation)
        except Exception as exc:
            contain("CallbackSpanProcessor.on_start", exc)
            return
        deliver(callbacks, event, self._async)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        span_id = context.span_id
        entry = self._spans.pop(span_id, None)
        if entry is None:
            if self._links:
                parent_id = self._links.pop(span_id, None)
                if parent_id is not None:
                    self._hand_up(parent_id, self._failures.take(span_id))
            return
        calls: list[tuple[tuple[Any, ...], Event]] = []
        try:
            payload = PAYLOAD.get()
            event = _extract.end_event(span, payload, entry.operation)
            earlier = self._failures.take(span_id) if self._failures.waiting else []
            if isinstance(event, Failed):
                error_type, message = describe(span)
                mine = Failure(payload.error if payload is not None else None, error_type, message, ())
                told = already_told(mine, earlier)
                tell = not_in(entry.callbacks, told)
                calls.append((tell, event))
                if _extract.KINDS.get(entry.operation) == "run":
                    calls.append((entry.callbacks, event.run_ended()))
                earlier.append(Failure(mine.error, error_type, message, told + tell))
            else:
                calls.append((entry.callbacks, event))
            self._hand_up(entry.parent_id, earlier)
        except Exception as exc:
            contain("CallbackSpanProcessor.on_end", exc)
            return
        for callbacks, ended in calls:
            deliver(callbacks, ended, self._async)

    def _hand_up(self, parent_id: int, failures: list[Failure]) -> None:
        if failures and parent_id and self._live(parent_id):
            self._failures.file(parent_id, failures)

    def shutdown(self) -> None:
        """Stop delivering: no callback is called for spans started or ended from now on."""
        self._fixed = self.fixed_callbacks = ()
        self.routes_scopes = self.wants_payload = False
        self._route_for = None
        self._spans.clear()
        self._links.clear()
        self._failures.clear()
        self._async.close()  # bounded wait: what was delivered before exit still arrives

    def pending_tasks(self) -> list[Any]:
        """This processor's async callbacks scheduled on the app's event loops and not finished
        yet (those on its background loop are waited for by :meth:`force_flush`)."""
        return self._async.pending_tasks()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for async callbacks still running on the background loop."""
        return self._async.flush(timeout_millis / 1000)
