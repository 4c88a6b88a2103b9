"""An agent run and a tool execution: typed objects with one lifecycle, like :class:`Invocation`.

:class:`AgentInvocation` is one ``invoke_agent`` span (a recursive run, nested or not);
:class:`ToolInvocation` is one ``execute_tool`` span (a REPL step). Each is made with the
:class:`~rlm_toolkit.genai.TelemetryHandler` the caller was given, starts its span through it,
and ends it exactly once: :meth:`stop` (success) or :meth:`fail`; later calls do nothing.

Content (the agent's prompt and answer, the tool's arguments and result) goes on the span only
when the handler's content policy includes spans; in-process consumers (callbacks) read it
from the typed fields of the :class:`~rlm_toolkit.genai.Payload` exposed while the span starts
and ends (``input_messages`` / ``output_messages`` / ``response`` for an agent,
``tool_input`` / ``tool_output`` for a tool), whatever the policy. Our own errors are
contained; nothing here raises into the caller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import INVALID_SPAN, Link, Span, Status, StatusCode

from rlm_toolkit._safety import contain
from rlm_toolkit.genai._content import to_json, truncate_messages
from rlm_toolkit.genai._context import Payload, Scope, payload_during
from rlm_toolkit.genai._handler import TelemetryHandler
from rlm_toolkit.genai._semconv import FINISH_REASON_ERROR

_INVOKE_AGENT = GA.GenAiOperationNameValues.INVOKE_AGENT.value
_EXECUTE_TOOL = GA.GenAiOperationNameValues.EXECUTE_TOOL.value
_FUNCTION = "function"  # gen_ai.tool.type: a tool the client side executes


#: The agent run current in this context (set by :meth:`AgentInvocation.current`): a run started
#: while another is current is a nested invocation (``gen_ai.invocation.is_nested``). A context
#: variable, so it follows the run's context into the threads and tasks that copy it.
_CURRENT_RUN: ContextVar[AgentInvocation | None] = ContextVar("rlm_toolkit_agent_run", default=None)


def text_message(role: str, text: str, finish_reason: str | None = None) -> dict[str, Any]:
    """One message in the conventions' JSON shape, with a single text part."""
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


class _Lifecycle:
    """What an agent run and a tool execution share: the handler, the span, one end."""

    __slots__ = ("_start", "_wants_payload", "ended", "handler", "scope", "span")

    def __init__(self, handler: TelemetryHandler, scope: Scope | None) -> None:
        self.handler = handler
        self.scope = scope
        self.span: Span = INVALID_SPAN
        self.ended = False
        # Asked once per run or step, as an inference asks once per call.
        self._wants_payload = handler.wants(scope).payload
        self._start = time.perf_counter()

    def _payload(self) -> Payload | None:
        if not self._wants_payload:
            return None
        payload = Payload()
        payload.scope = self.scope
        return payload

    def _close(self, payload: Payload | None, end_time: int | None) -> None:
        with payload_during(payload):
            self.span.end(end_time=end_time)


class AgentInvocation(_Lifecycle):
    """One agent run: an ``invoke_agent`` span (INTERNAL, a child of the current span).

    Args:
        handler: the pipeline the run reports through (tracer, content policy, consumers).
        scope: the run's scope (its callbacks are consumers too), or None.
        agent_name: ``gen_ai.agent.name``.
        request_model: ``gen_ai.request.model``.
        prompt: the run's prompt (content: on the span only when capture includes spans).
        attributes: more start attributes (samplers see them).
        links: spans the run relates to (an eval task's run links to the eval span).

    Called on the run's thread; the span is started on construction. ``nested``: whether
    another run was current (:meth:`current`) when this one started -- a nested ``rlm_query``
    run, or a run started from code another run executes.
    """

    __slots__ = ("_metric_attrs", "agent_name", "nested", "prompt", "tool_calls")

    def __init__(
        self,
        handler: TelemetryHandler,
        scope: Scope | None,
        agent_name: str,
        request_model: str,
        prompt: str,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
    ) -> None:
        super().__init__(handler, scope)
        self.prompt = prompt
        self.agent_name = agent_name
        self.nested = _CURRENT_RUN.get() is not None
        #: tool executions started while this run was current (a nested run counts its own)
        self.tool_calls = 0
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: _INVOKE_AGENT,
            GA.GEN_AI_AGENT_NAME: agent_name,
            GA.GEN_AI_REQUEST_MODEL: request_model,
        }
        self._metric_attrs = dict(attrs)
        try:
            if attributes:
                attrs.update(attributes)
            if handler.content.on_span:
                attrs[GA.GEN_AI_INPUT_MESSAGES] = to_json(
                    truncate_messages([text_message("user", prompt)], handler.max_length)
                )
            with payload_during(self._run_payload()):
                self.span = handler.start_agent_span(f"{_INVOKE_AGENT} {agent_name}", attrs, links=links)
        except Exception as exc:
            contain("genai: start agent span", exc)

    def _run_payload(self) -> Payload | None:
        payload = self._payload()
        if payload is not None:
            payload.input_messages = [text_message("user", self.prompt)]
        return payload

    @contextlib.contextmanager
    def current(self) -> Iterator[Span]:
        """Make the run current: its span (no end, no exception recording: :meth:`stop` /
        :meth:`fail` do that) and the run itself, so runs started meanwhile are nested."""
        token = _CURRENT_RUN.set(self)
        try:
            with trace.use_span(
                self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield self.span
        finally:
            # Left in another context (a generator finalized elsewhere): that context's own
            # copy of the variable ends with it; nothing to restore here.
            with contextlib.suppress(ValueError):
                _CURRENT_RUN.reset(token)

    def stop(
        self,
        answer: str,
        response: Any = None,
        finish_reason: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        end_time: int | None = None,
    ) -> None:
        """End as a success. ``answer``: the run's final text (content); ``response``: the
        run's result object, handed to callbacks as ``result``; ``attributes``: the end
        attributes (usage, cost, status...); ``end_time``: ns since the epoch, if not now."""
        if self.ended:
            return
        self.ended = True
        try:
            output = [text_message("assistant", answer, finish_reason)]
            if self.span.is_recording():
                attrs: dict[str, Any] = dict(attributes or {})
                if self.handler.content.on_span:
                    attrs[GA.GEN_AI_OUTPUT_MESSAGES] = to_json(
                        truncate_messages(output, self.handler.max_length)
                    )
                self.span.set_attributes(attrs)
            payload = self._run_payload()
            if payload is not None:
                payload.output_messages = output
                payload.response = response
            self.handler.instruments.record_agent(
                time.perf_counter() - self._start, self._metric_attrs, None, self.nested, self.tool_calls
            )
            self._close(payload, end_time)
        except Exception as exc:
            contain("genai: end agent span", exc)

    def fail(
        self, error: BaseException, attributes: Mapping[str, Any] | None = None, end_time: int | None = None
    ) -> None:
        """End as a failure with ``error`` (callbacks' ``on_error`` gets it); ``attributes`` and
        ``end_time`` as in :meth:`stop`."""
        if self.ended:
            return
        self.ended = True
        try:
            error_type = type(error).__qualname__
            if self.span.is_recording():
                attrs: dict[str, Any] = dict(attributes or {})
                attrs[error_attributes.ERROR_TYPE] = error_type
                if self.handler.conventions.finish_reasons_on_failure:
                    # latest (registry.yaml @ e9de14bafd97): the run's finish reason was
                    # expected but never received -> ``error``
                    attrs.setdefault(GA.GEN_AI_RESPONSE_FINISH_REASONS, (FINISH_REASON_ERROR,))
                self.span.set_attributes(attrs)
                self.span.set_status(Status(StatusCode.ERROR, error_type))
            payload = self._run_payload()
            if payload is not None:
                payload.error = error
            self.handler.instruments.record_agent(
                time.perf_counter() - self._start,
                self._metric_attrs,
                error_type,
                self.nested,
                self.tool_calls,
            )
            self._close(payload, end_time)
        except Exception as exc:
            contain("genai: end agent span", exc)


class ToolInvocation(_Lifecycle):
    """One tool execution: an ``execute_tool`` span (INTERNAL, a child of the current span).

    Args:
        handler, scope: as for :class:`AgentInvocation`.
        tool_name: ``gen_ai.tool.name``.
        arguments: the tool's input (content: ``gen_ai.tool.call.arguments`` only when capture
            includes spans; callbacks get it as ``tool_input``).
        attributes: more start attributes.
    """

    __slots__ = ("agent_name", "arguments", "tool_name")

    def __init__(
        self,
        handler: TelemetryHandler,
        scope: Scope | None,
        tool_name: str,
        arguments: Any,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(handler, scope)
        self.tool_name = tool_name
        self.arguments = arguments
        run = _CURRENT_RUN.get()  # the run executing the tool, if any
        self.agent_name = run.agent_name if run is not None else None
        try:
            if run is not None:
                run.tool_calls += 1
            attrs: dict[str, Any] = {
                GA.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
                GA.GEN_AI_TOOL_NAME: tool_name,
                GA.GEN_AI_TOOL_TYPE: _FUNCTION,
            }
            if self.agent_name is not None and handler.conventions.tool_agent_name:
                attrs[GA.GEN_AI_AGENT_NAME] = self.agent_name
            if attributes:
                attrs.update(attributes)
            if handler.content.on_span:
                attrs[GA.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
            payload = self._payload()
            if payload is not None:
                payload.tool_input = arguments
            with payload_during(payload):
                self.span = handler.start_tool_span(f"{_EXECUTE_TOOL} {tool_name}", attrs)
        except Exception as exc:
            contain("genai: start tool span", exc)

    def stop(
        self,
        output: Any,
        shown: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        error: BaseException | None = None,
        error_type: str | None = None,
    ) -> None:
        """End the execution. ``output``: its result for callbacks (``tool_output``);
        ``shown``: the text put on the span as ``gen_ai.tool.call.result`` when capture
        includes spans; ``attributes``: more end attributes. A tool that reported a failure
        without raising passes ``error_type`` (the span's ``error.type`` and status) and the
        ``error`` callbacks' ``on_error`` gets."""
        if self.ended:
            return
        self.ended = True
        try:
            if self.span.is_recording():
                attrs: dict[str, Any] = dict(attributes or {})
                if shown is not None and self.handler.content.on_span:
                    limit = self.handler.max_length
                    attrs[GA.GEN_AI_TOOL_CALL_RESULT] = shown[:limit] if limit else shown
                if error_type is not None:
                    attrs[error_attributes.ERROR_TYPE] = error_type
                self.span.set_attributes(attrs)
                if error_type is not None:
                    self.span.set_status(Status(StatusCode.ERROR, error_type))
            self._conventions_end(error_type)
            payload = self._payload()
            if payload is not None:
                payload.tool_input = self.arguments
                payload.tool_output = output
                if error_type is not None:
                    payload.error = error
            self._close(payload, None)
        except Exception as exc:
            contain("genai: end tool span", exc)

    def fail(self, error: BaseException) -> None:
        """End as failed because the caller raised ``error`` (callbacks' ``on_error`` gets it)."""
        if self.ended:
            return
        self.ended = True
        try:
            error_type = type(error).__qualname__
            if self.span.is_recording():
                self.span.set_attribute(error_attributes.ERROR_TYPE, error_type)
                self.span.set_status(Status(StatusCode.ERROR, error_type))
            self._conventions_end(error_type)
            payload = self._payload()
            if payload is not None:
                payload.error = error
                payload.tool_input = self.arguments
            self._close(payload, None)
        except Exception as exc:
            contain("genai: end tool span", exc)

    def _conventions_end(self, error_type: str | None) -> None:
        """What the latest GenAI conventions add to a tool execution (nothing in v1.41 mode):
        the ``gen_ai.execute_tool.duration`` histogram and, on failure, the mode's
        ``tool_exception_event`` (a WARN record in the span's context carrying the error type
        only, never the tool's error text, which is content)."""
        handler = self.handler
        histogram = handler.instruments.tool_duration
        if histogram is None:
            return
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
            GA.GEN_AI_TOOL_NAME: self.tool_name,
            GA.GEN_AI_TOOL_TYPE: _FUNCTION,
        }
        if self.agent_name is not None:
            attrs[GA.GEN_AI_AGENT_NAME] = self.agent_name
        if error_type is not None:
            attrs[error_attributes.ERROR_TYPE] = error_type
        histogram.record(time.perf_counter() - self._start, attrs)
        event = handler.conventions.tool_exception_event
        if error_type is not None and event is not None:
            handler.logger.emit(
                event_name=event,
                attributes=attrs,
                context=trace.set_span_in_context(self.span),
                severity_number=SeverityNumber.WARN,
                timestamp=time.time_ns(),
            )
