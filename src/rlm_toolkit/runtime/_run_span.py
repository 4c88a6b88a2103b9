"""The ``invoke_agent rlm`` span around one run, and the payload callbacks read from it.

The span is INTERNAL and current while the run's LLM calls are made, so their CLIENT spans are
its children. Prompt and result travel to in-process callbacks only through
:func:`payload_during` (never as attributes), so content capture rules stay with the exporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit._safety import contain
from rlm_toolkit.genai._content import resolve_max_length, to_json, truncate_messages
from rlm_toolkit.genai._context import Payload, consumers, payload_during
from rlm_toolkit.runtime._result import RLMResult
from rlm_toolkit.version import __version__

SPAN_NAME = f"{gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value} {rlm_attrs.RLM_AGENT_NAME}"
_global_tracer: Tracer | None = None


def default_tracer() -> Tracer:
    # A ProxyTracer until the app sets a provider, then the real one: safe to keep.
    global _global_tracer
    if _global_tracer is None:
        _global_tracer = trace.get_tracer("rlm_toolkit.runtime", __version__)
    return _global_tracer


def _text_message(role: str, text: str, finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def _captured(messages: list[dict[str, Any]]) -> str:
    return to_json(truncate_messages(messages, resolve_max_length()))


class RunSpan:
    """Lifecycle of one run span: start, make current, then exactly one of finish/fail."""

    __slots__ = ("_capture", "_context", "_ended", "_prompt", "_trace_id", "span")

    def __init__(
        self, tracer: Tracer, model: str, prompt: str, context: Any, *, capture: bool = False
    ) -> None:
        """``capture``: put prompt and answer on the span (content capture includes spans)."""
        self._prompt = prompt
        self._context = context
        self._capture = capture
        self._ended = False
        self.span: Span = INVALID_SPAN
        try:
            attrs: dict[str, Any] = {
                gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value,
                gen_ai.GEN_AI_AGENT_NAME: rlm_attrs.RLM_AGENT_NAME,
                gen_ai.GEN_AI_REQUEST_MODEL: model,
            }
            if isinstance(context, str):  # other shapes: the recursive runtime counts them
                attrs[rlm_attrs.RLM_RUN_CONTEXT_CHARS] = len(context)
            if capture:
                attrs[gen_ai.GEN_AI_INPUT_MESSAGES] = _captured([_text_message("user", prompt)])
            payload = self._payload() if consumers.active else None
            if payload is not None:
                payload.request = {"model": model, "prompt": prompt, "context": context}
            with payload_during(payload):
                self.span = tracer.start_span(SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attrs)
        except Exception as exc:
            contain("runtime: start run span", exc)
        # Decided at start: once ended, a span is no longer "recording".
        ctx = self.span.get_span_context()
        self._trace_id = (
            trace.format_trace_id(ctx.trace_id) if ctx.is_valid and self.span.is_recording() else None
        )

    def _payload(self) -> Payload:
        payload = Payload()
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
                    attrs[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = result.usage.prompt_tokens
                    attrs[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = result.usage.completion_tokens
                if result.model:
                    attrs[gen_ai.GEN_AI_RESPONSE_MODEL] = result.model
                if result.finish_reason:
                    attrs[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = [result.finish_reason]
                if result.cost is not None:
                    attrs[rlm_attrs.GEN_AI_USAGE_COST] = result.cost
                if self._capture:
                    output = [_text_message("assistant", result.answer, result.finish_reason)]
                    attrs[gen_ai.GEN_AI_OUTPUT_MESSAGES] = _captured(output)
                span.set_attributes(attrs)
            payload = self._payload() if consumers.active else None
            if payload is not None:
                payload.output_messages = [_text_message("assistant", result.answer, result.finish_reason)]
                payload.response = result
                payload.extra = {"prompt": self._prompt, "context": self._context, "result": result}
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
            payload = self._payload() if consumers.active else None
            if payload is not None:
                payload.error = error
            self._end(payload, end_time)
        except Exception as exc:
            contain("runtime: end run span", exc)

    def _end(self, payload: Payload | None, end_time: int | None) -> None:
        """End the span with ``payload`` exposed to in-process processors while it ends."""
        with payload_during(payload):
            self.span.end(end_time=end_time)
