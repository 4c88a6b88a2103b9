"""The ``invoke_agent rlm`` span around one run, and the payload callbacks read from it.

The span is INTERNAL and current while the run's LLM calls are made, so their CLIENT spans are
its children. Prompt and result travel to in-process callbacks only through
:func:`payload_during` (never as attributes), so content capture rules stay with the exporter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Scope, TelemetryHandler
from rlm_toolkit.genai._content import to_json, truncate_messages
from rlm_toolkit.genai._context import Payload, payload_during
from rlm_toolkit.genai._eval import claim_run_links
from rlm_toolkit.runtime._result import RLMResult

SPAN_NAME = f"{GA.GenAiOperationNameValues.INVOKE_AGENT.value} {rlm_attrs.RLM_AGENT_NAME}"


def _text_message(role: str, text: str, finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def _captured(messages: list[dict[str, Any]], limit: int) -> str:
    return to_json(truncate_messages(messages, limit))


class RunSpan:
    """Lifecycle of one run span: start, make current, then exactly one of finish/fail."""

    __slots__ = (
        "_agent_attrs",
        "_capture",
        "_context",
        "_ended",
        "_payload",
        "_prompt",
        "_start",
        "_trace_id",
        "handler",
        "scope",
        "span",
    )

    def __init__(
        self, handler: TelemetryHandler, scope: Scope | None, model: str, prompt: str, context: Any
    ) -> None:
        """Start the run span with ``handler``'s tracer. Prompt and answer go on the span only
        when its content policy includes spans; in-process consumers of ``handler`` (and the
        callbacks of ``scope``) get them through the payload. ``handler`` and ``scope`` stay
        reachable from the run (``.handler``, ``.scope``) for steps that report inside it."""
        self.handler = handler
        self.scope = scope
        self._prompt = prompt
        self._context = context
        self._capture = capture = handler.content.on_span
        # Asked once per run, like once per LLM call: what the pipeline's consumers want.
        self._payload = handler.wants(scope).payload
        self._ended = False
        self._start = time.perf_counter()
        self._agent_attrs: dict[str, Any] = {}
        self.span: Span = INVALID_SPAN
        try:
            attrs: dict[str, Any] = {
                GA.GEN_AI_OPERATION_NAME: GA.GenAiOperationNameValues.INVOKE_AGENT.value,
                GA.GEN_AI_AGENT_NAME: rlm_attrs.RLM_AGENT_NAME,
                GA.GEN_AI_REQUEST_MODEL: model,
            }
            if isinstance(context, str):  # other shapes: the recursive runtime counts them
                attrs[rlm_attrs.RLM_RUN_CONTEXT_CHARS] = len(context)
            if capture:
                attrs[GA.GEN_AI_INPUT_MESSAGES] = _captured(
                    [_text_message("user", prompt)], handler.max_length
                )
            payload = self._new_payload() if self._payload else None
            if payload is not None:
                payload.request = {"model": model, "prompt": prompt, "context": context}
            self._agent_attrs = attrs
            with payload_during(payload):
                # An eval task's run: the root of its trace, linked to the eval span (genai/_eval.py).
                claim = claim_run_links()
                self.span = handler.start_agent_span(SPAN_NAME, attrs, links=claim.links if claim else None)
                if claim is not None:
                    claim.span = self.span
        except Exception as exc:
            contain("runtime: start run span", exc)
        # Decided at start: once ended, a span is no longer "recording".
        ctx = self.span.get_span_context()
        self._trace_id = (
            trace.format_trace_id(ctx.trace_id) if ctx.is_valid and self.span.is_recording() else None
        )

    def _new_payload(self) -> Payload:
        payload = Payload()
        payload.scope = self.scope
        payload.input_messages = [_text_message("user", self._prompt)]
        payload.extra = {"prompt": self._prompt, "context": self._context}
        return payload

    def current(self) -> AbstractContextManager[Any]:
        """Make the run span current (no end, no exception recording: ``finish``/``fail`` do that)."""
        return trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    @property
    def trace_id(self) -> str | None:
        """Hex trace id of a recorded run, else None; the same before and after the span ends."""
        return self._trace_id

    @property
    def ended(self) -> bool:
        return self._ended

    def finish(
        self, result: RLMResult, extra: Mapping[str, Any] | None = None, end_time: int | None = None
    ) -> None:
        """End the span as a success; ``extra``: more attributes (e.g. a stream's end reason);
        ``end_time``: when it ended (ns since the epoch), if not now (an abandoned stream)."""
        if self._ended:
            return
        self._ended = True
        try:
            span = self.span
            if span.is_recording():
                attrs: dict[str, Any] = dict(extra or {})
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
                if self._capture:
                    output = [_text_message("assistant", result.answer, result.finish_reason)]
                    attrs[GA.GEN_AI_OUTPUT_MESSAGES] = _captured(output, self.handler.max_length)
                span.set_attributes(attrs)
            payload = self._new_payload() if self._payload else None
            if payload is not None:
                payload.output_messages = [_text_message("assistant", result.answer, result.finish_reason)]
                payload.response = result
                payload.extra = {"prompt": self._prompt, "context": self._context, "result": result}
            self.handler.instruments.record_agent(time.perf_counter() - self._start, self._agent_attrs, None)
            self._end(payload, end_time)
        except Exception as exc:
            contain("runtime: end run span", exc)

    def fail(
        self, error: BaseException, extra: Mapping[str, Any] | None = None, end_time: int | None = None
    ) -> None:
        """End the span as a failure; ``extra`` and ``end_time`` as in :meth:`finish`."""
        if self._ended:
            return
        self._ended = True
        try:
            span = self.span
            if span.is_recording():
                attrs: dict[str, Any] = dict(extra or {})
                attrs[error_attributes.ERROR_TYPE] = type(error).__qualname__
                span.set_attributes(attrs)
                span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            payload = self._new_payload() if self._payload else None
            if payload is not None:
                payload.error = error
            error_type = type(error).__qualname__
            self.handler.instruments.record_agent(
                time.perf_counter() - self._start, self._agent_attrs, error_type
            )
            self._end(payload, end_time)
        except Exception as exc:
            contain("runtime: end run span", exc)

    def _end(self, payload: Payload | None, end_time: int | None) -> None:
        """End the span with ``payload`` exposed to in-process processors while it ends."""
        with payload_during(payload):
            self.span.end(end_time=end_time)
