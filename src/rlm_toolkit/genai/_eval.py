"""Spans and records of an eval (many runs): the eval span, the link each task's run span
carries to it, and ``gen_ai.evaluation.result`` records.

An eval's tasks run in other processes, each as the root of its own trace. The eval span's
context crosses the process boundary as a W3C ``traceparent`` carrier (:func:`eval_carrier`);
the worker turns it back into a span link (:func:`link_from_carrier`) and runs the task inside
:func:`linked_run`: the first run span started there takes the links and is noted, so the
evaluation record can be parented to it (:func:`emit_evaluation`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit.genai._events import emit_event
from rlm_toolkit.genai._handler import TelemetryHandler

_W3C = TraceContextTextMapPropagator()


class RunClaim:
    """The links the next run span takes, and that span once started."""

    __slots__ = ("claimed", "links", "span")

    def __init__(self, links: Sequence[Link]) -> None:
        self.links = list(links)
        self.claimed = False
        self.span: Span = INVALID_SPAN


_CLAIM: ContextVar[RunClaim | None] = ContextVar("rlm_toolkit_run_claim", default=None)


def start_eval_span(handler: TelemetryHandler, name: str, attributes: Mapping[str, Any]) -> Span:
    """Start the eval run's span (INTERNAL, a root of its own trace); the caller ends it."""
    attrs = {rlm_attrs.RLM_EVAL_NAME: name, **attributes}
    return handler.tracer.start_span(
        f"{rlm_attrs.RLM_EVAL_SPAN_NAME} {name}", context=Context(), kind=SpanKind.INTERNAL, attributes=attrs
    )


def eval_carrier(span: Span) -> dict[str, str]:
    """The W3C carrier (``traceparent``, ``tracestate``) of ``span``; empty when not recorded."""
    carrier: dict[str, str] = {}
    if span.get_span_context().is_valid:
        _W3C.inject(carrier, context=set_span_in_context(span))
    return carrier


def link_from_carrier(carrier: Mapping[str, str]) -> Link | None:
    """A span link to the span ``carrier`` came from, or None for an empty or bad carrier."""
    context = get_current_span(_W3C.extract(dict(carrier))).get_span_context()
    return Link(context) if context.is_valid else None


@contextmanager
def linked_run(links: Sequence[Link]) -> Iterator[RunClaim]:
    """Inside: the first run span started takes ``links`` (see :func:`claim_run_links`)."""
    claim = RunClaim(links)
    token = _CLAIM.set(claim)
    try:
        yield claim
    finally:
        _CLAIM.reset(token)


def claim_run_links() -> RunClaim | None:
    """For the run span about to start: the pending claim (once), else None."""
    claim = _CLAIM.get()
    if claim is None or claim.claimed:
        return None
    claim.claimed = True
    return claim


def emit_evaluation(
    handler: TelemetryHandler,
    span: Span,
    name: str,
    score: float | None,
    label: str,
    explanation: str | None = None,
) -> None:
    """Emit one ``gen_ai.evaluation.result`` record in ``span``'s context (the scored run)."""
    attrs: dict[str, Any] = {GA.GEN_AI_EVALUATION_NAME: name, GA.GEN_AI_EVALUATION_SCORE_LABEL: label}
    if score is not None:
        attrs[GA.GEN_AI_EVALUATION_SCORE_VALUE] = score
    if explanation:
        attrs[GA.GEN_AI_EVALUATION_EXPLANATION] = explanation
    emit_event(handler.logger, rlm_attrs.EVENT_EVALUATION_RESULT, attrs, span, None)
