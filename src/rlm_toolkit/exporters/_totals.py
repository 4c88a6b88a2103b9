"""Exact run totals for the trace tree's summary line, kept in O(open spans) memory.

The tree shows a bounded number of spans, but its ``Σ`` line must stay exact over every span
the run produced. :class:`Totals` is fed each span as it ends and counts as the renderer's
``_innermost`` does (an LLM span wrapping another LLM span is one call; a run failing because
its call failed is one error): spans end before their parents, so a span ending reports to its
parent whether it, or anything below it, was an LLM call (or failed). Those marks are popped
when the parent ends, so only spans still open hold memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.trace import StatusCode

from rlm_toolkit import attributes as rlm

_SpanKey = tuple[int, int]
_OPERATION = gen_ai_attributes.GenAiOperationNameValues
#: Operations that are one model call each: the summary counts (and sums the usage of) these
#: only, so a run/agent span carrying its children's totals is not counted twice.
LLM_OPERATIONS = frozenset(
    op.value
    for op in (
        _OPERATION.CHAT,
        _OPERATION.TEXT_COMPLETION,
        _OPERATION.GENERATE_CONTENT,
        _OPERATION.EMBEDDINGS,
    )
)


def is_root(span: ReadableSpan) -> bool:
    """The local root of its trace (no parent, or a parent in another process)."""
    return span.parent is None or span.parent.is_remote


def is_llm_call(span: ReadableSpan) -> bool:
    attrs: Mapping[str, Any] = span.attributes or {}
    operation = attrs.get(gen_ai_attributes.GEN_AI_OPERATION_NAME)
    if operation is None:  # an instrumentation that does not name operations: go by usage
        return gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS in attrs
    return operation in LLM_OPERATIONS


class Totals:
    """Running totals over every span seen (not thread-safe: the exporter's lock guards it)."""

    def __init__(self) -> None:
        self.spans = 0
        self.traces = 0  # local root spans: one per trace started in this process
        self.calls = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost = 0.0
        self.retries = 0
        self.errors = 0
        self._llm_below: set[_SpanKey] = set()
        self._error_below: set[_SpanKey] = set()

    def add(self, span: ReadableSpan, is_llm_call: bool) -> None:
        self.spans += 1
        if is_root(span):
            self.traces += 1
        context = span.context
        key = (context.trace_id, context.span_id) if context is not None else None
        parent = (
            (context.trace_id, span.parent.span_id)
            if context is not None and span.parent is not None and not span.parent.is_remote
            else None
        )
        llm_below = key is not None and key in self._llm_below
        error_below = key is not None and key in self._error_below
        if key is not None:
            self._llm_below.discard(key)
            self._error_below.discard(key)
        attrs: Mapping[str, Any] = span.attributes or {}
        if is_llm_call and not llm_below:
            self.calls += 1
            self.tokens_in += int(attrs.get(gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS) or 0)
            self.tokens_out += int(attrs.get(gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS) or 0)
            value = attrs.get(rlm.GEN_AI_USAGE_COST)
            self.cost += float(value) if isinstance(value, (int, float)) else 0.0
        failed = span.status.status_code is StatusCode.ERROR
        if failed and not error_below:
            self.errors += 1
        self.retries += sum(1 for event in span.events if event.name == rlm.EVENT_RETRY)
        if parent is not None:
            if is_llm_call or llm_below:
                self._llm_below.add(parent)
            if failed or error_below:
                self._error_below.add(parent)
