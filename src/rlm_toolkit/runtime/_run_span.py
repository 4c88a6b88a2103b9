"""The ``invoke_agent rlm`` span around one run: an :class:`~rlm_toolkit.genai.AgentInvocation`
made with the run's handler, plus what only an RLM run knows (its context size, its result).

The span is INTERNAL and current while the run's LLM calls are made, so their CLIENT spans are
its children. Prompt and answer reach in-process callbacks through the invocation's payload
(never as attributes unless capture includes spans).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import Span

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit._safety import contain
from rlm_toolkit.genai import AgentInvocation, Scope, TelemetryHandler, claim_run_links
from rlm_toolkit.runtime._result import RLMResult

SPAN_NAME = f"{GA.GenAiOperationNameValues.INVOKE_AGENT.value} {rlm_attrs.RLM_AGENT_NAME}"


class RunSpan:
    """One run's agent invocation: started on construction, current while the run's calls are
    made (:meth:`current`), then exactly one of :meth:`finish` / :meth:`fail`."""

    __slots__ = ("_trace_id", "agent")

    def __init__(
        self, handler: TelemetryHandler, scope: Scope | None, model: str, prompt: str, context: Any
    ) -> None:
        """Start the run span through ``handler`` (its tracer, content policy and consumers;
        ``scope``'s callbacks see it too)."""
        attrs: dict[str, Any] = {}
        if isinstance(context, str):  # other shapes: the recursive runtime counts them
            attrs[rlm_attrs.RLM_RUN_CONTEXT_CHARS] = len(context)
        # An eval task's run: the root of its trace, linked to the eval span (genai/_eval.py).
        claim = claim_run_links()
        self.agent = AgentInvocation(
            handler,
            scope,
            rlm_attrs.RLM_AGENT_NAME,
            model,
            prompt,
            attrs,
            links=claim.links if claim else None,
        )
        if claim is not None:
            claim.span = self.agent.span
        # Decided at start: once ended, a span is no longer "recording".
        span = self.agent.span
        ctx = span.get_span_context()
        self._trace_id = trace.format_trace_id(ctx.trace_id) if ctx.is_valid and span.is_recording() else None

    @property
    def span(self) -> Span:
        return self.agent.span

    @property
    def handler(self) -> TelemetryHandler:
        return self.agent.handler

    @property
    def scope(self) -> Scope | None:
        return self.agent.scope

    def current(self) -> AbstractContextManager[Any]:
        """Make the run current (no end, no exception recording: ``finish``/``fail`` do that):
        its span, and the run itself, so a run started meanwhile (``rlm_query``) is nested."""
        return self.agent.current()

    @property
    def trace_id(self) -> str | None:
        """Hex trace id of a recorded run, else None; the same before and after the span ends."""
        return self._trace_id

    @property
    def ended(self) -> bool:
        return self.agent.ended

    def finish(
        self, result: RLMResult, extra: Mapping[str, Any] | None = None, end_time: int | None = None
    ) -> None:
        """End the span as a success; ``extra``: more attributes (e.g. a stream's end reason);
        ``end_time``: when it ended (ns since the epoch), if not now (an abandoned stream)."""
        if self.agent.ended:
            return
        attrs: dict[str, Any] = dict(extra or {})
        try:
            attrs[rlm_attrs.RLM_RUN_ITERATIONS] = result.iterations
            if result.usage.known:  # unreported usage is absent, never a fake 0
                attrs[GA.GEN_AI_USAGE_INPUT_TOKENS] = result.usage.prompt_tokens
                attrs[GA.GEN_AI_USAGE_OUTPUT_TOKENS] = result.usage.completion_tokens
            if result.model:
                attrs[GA.GEN_AI_RESPONSE_MODEL] = result.model
            if result.finish_reason:
                attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = [result.finish_reason]
            if result.cost is not None:
                attrs[rlm_attrs.GEN_AI_USAGE_COST] = result.cost
        except Exception as exc:
            contain("runtime: run span attributes", exc)
        self.agent.stop(result.answer, result, result.finish_reason, attrs, end_time)

    def fail(
        self, error: BaseException, extra: Mapping[str, Any] | None = None, end_time: int | None = None
    ) -> None:
        """End the span as a failure; ``extra`` and ``end_time`` as in :meth:`finish`."""
        self.agent.fail(error, extra, end_time)
