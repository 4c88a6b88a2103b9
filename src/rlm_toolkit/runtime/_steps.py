"""Every telemetry touch-point of a recursive run, in one place.

:class:`Steps` is given the run's pipeline owner (``TelemetryHandler``: tracer, content policy,
consumers), its scope (callbacks) and the run metrics by ``RLM`` when a run starts; nothing
here reads a global for routing. It starts
the ``execute_tool repl`` span around each code execution (``llm_query`` sub-calls made while
the code runs are its children because the span is current on the host thread that services
them), starts the nested ``invoke_agent rlm`` span of an ``rlm_query`` run, and shapes the run
span's own attributes and metrics.

Code and REPL output are content: they go on the span (``gen_ai.tool.call.arguments`` /
``.result``) only when capture includes spans, and reach in-process callbacks through the
``Payload`` (``tool_input`` / ``tool_output``) either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Scope, TelemetryHandler
from rlm_toolkit.genai._context import Payload, payload_during
from rlm_toolkit.runtime._budget import Budget, RLMConfig
from rlm_toolkit.runtime._prompts import context_chars
from rlm_toolkit.runtime._recursive import Execute, Outcome
from rlm_toolkit.runtime._run_span import RunSpan
from rlm_toolkit.sandbox import ExecutionResult
from rlm_toolkit.version import __version__

TOOL_SPAN_NAME = f"{gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value} {rlm_attrs.RLM_REPL_TOOL_NAME}"


class ReplError(RuntimeError):
    """What callbacks' ``on_error`` receives for a code execution that raised or hit a limit."""


@dataclass(frozen=True)
class RunInstruments:
    iterations: Histogram
    subcalls: Histogram
    cost: Histogram


def run_instruments(meter_provider: Any = None) -> RunInstruments:
    """The run metrics on ``meter_provider`` (default: the global one, a proxy until set)."""
    meter: Meter = (
        meter_provider.get_meter("rlm_toolkit.runtime", __version__)
        if meter_provider is not None
        else metrics.get_meter("rlm_toolkit.runtime", __version__)
    )
    return RunInstruments(
        iterations=meter.create_histogram(
            rlm_attrs.METRIC_RUN_ITERATIONS,
            unit="{iteration}",
            description="Root-model turns per recursive run",
        ),
        subcalls=meter.create_histogram(
            rlm_attrs.METRIC_RUN_SUBCALLS,
            unit="{call}",
            description="llm_query/rlm_query sub-calls per run tree",
        ),
        cost=meter.create_histogram(
            rlm_attrs.METRIC_RUN_COST, unit="USD", description="Estimated cost of a recursive run tree"
        ),
    )


def _error_type(result: ExecutionResult) -> str | None:
    if result.killed:
        return f"{result.killed}_limit" if result.killed != "crash" else "crash"
    if not result.error:
        return None
    last = str(result.error).strip().splitlines()[-1] if str(result.error).strip() else ""
    name = last.split(":", 1)[0].strip()
    return name if name.isidentifier() else "error"


class ToolStep:
    """One ``execute_tool repl`` span: started by :meth:`Steps.execution`, ended once."""

    __slots__ = ("_code", "_ended", "_start", "_steps", "span")

    def __init__(self, span: Span, code: str, steps: Steps) -> None:
        self.span = span
        self._code = code
        self._steps = steps
        self._ended = False
        self._start = time.perf_counter()

    def _conventions_end(self, error_type: str | None) -> None:
        """What the latest GenAI conventions add to a tool execution (nothing in v1.41 mode):
        the ``gen_ai.execute_tool.duration`` histogram and, on failure, the mode's
        ``tool_exception_event`` (``rlm.execute_tool.exception``: a WARN record in the span's
        context; its error type only, never the REPL's traceback text, which is content)."""
        handler = self._steps.handler
        histogram = handler.instruments.tool_duration
        if histogram is None:
            return
        attrs: dict[str, Any] = {
            gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value,
            gen_ai.GEN_AI_TOOL_NAME: rlm_attrs.RLM_REPL_TOOL_NAME,
        }
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

    def finish(self, result: ExecutionResult) -> None:
        """End with the sandbox's ``ExecutionResult`` (an error or kill makes the span an error)."""
        if self._ended:
            return
        self._ended = True
        try:
            error_type = _error_type(result)
            if self.span.is_recording():
                attrs: dict[str, Any] = {
                    rlm_attrs.RLM_REPL_OUTPUT_CHARS: len(result.output),
                    rlm_attrs.RLM_RUN_SUBCALLS: result.queries,
                }
                if result.killed:
                    attrs[rlm_attrs.RLM_REPL_KILLED] = result.killed
                if result.final is not None or (
                    isinstance(result.answer, dict) and result.answer.get("ready") is True
                ):
                    attrs[rlm_attrs.RLM_REPL_FINAL] = True
                if self._steps.capture:
                    limit = self._steps.handler.max_length
                    shown = result.output + (f"\n{result.error}" if result.error else "")
                    attrs[gen_ai.GEN_AI_TOOL_CALL_RESULT] = shown[:limit] if limit else shown
                if error_type is not None:
                    attrs[error_attributes.ERROR_TYPE] = error_type
                self.span.set_attributes(attrs)
                if error_type is not None:
                    self.span.set_status(Status(StatusCode.ERROR, error_type))
            self._conventions_end(error_type)
            payload = self._steps.payload()
            if payload is not None:
                payload.extra = {"tool_input": self._code, "tool_output": result.output, "result": result}
                if error_type is not None:
                    payload.error = ReplError(str(result.error or error_type))
            with payload_during(payload):
                self.span.end()
        except Exception as exc:
            contain("runtime: end execute_tool span", exc)

    def fail(self, error: BaseException) -> None:
        """End as failed because the host side raised (our bug, or an interrupt)."""
        if self._ended:
            return
        self._ended = True
        try:
            if self.span.is_recording():
                self.span.set_attribute(error_attributes.ERROR_TYPE, type(error).__qualname__)
                self.span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            self._conventions_end(type(error).__qualname__)
            payload = self._steps.payload()
            if payload is not None:
                payload.error = error
                payload.extra = {"tool_input": self._code}
            with payload_during(payload):
                self.span.end()
        except Exception as exc:
            contain("runtime: end execute_tool span", exc)


class Steps:
    """The telemetry of one run tree (root and nested runs share it), reported through the
    run's pipeline owner."""

    __slots__ = ("_instruments", "_run_span", "_wants_payload", "capture", "handler", "scope")

    def __init__(
        self,
        handler: TelemetryHandler,
        scope: Scope | None,
        instruments: RunInstruments | None,
        run_span: Callable[[str, Any], RunSpan],
    ) -> None:
        """``handler``: the pipeline owner the run reports through (its tracer for the
        ``execute_tool`` spans, its content policy: code and output go on spans only when it
        includes spans); ``scope``: the run's scope, whose callbacks get the tool events;
        ``run_span(prompt, context)``: starts a run span the way the root's was started (a
        nested ``rlm_query`` run's), under the current span. Called on the run's thread."""
        self.handler = handler
        self.scope = scope
        self.capture = handler.content.on_span
        # Asked once per run tree, as the run span asks once per run.
        self._wants_payload = handler.wants(scope).payload
        self._instruments = instruments
        self._run_span = run_span

    def payload(self) -> Payload | None:
        """A payload for a tool span's start or end, when an in-process consumer reads one."""
        if not self._wants_payload:
            return None
        payload = Payload()
        payload.scope = self.scope
        return payload

    @contextmanager
    def execution(self, step: Execute, depth: int, level: str) -> Iterator[ToolStep]:
        """The ``execute_tool`` span, current while the code runs; the body calls ``finish``."""
        span: Span = INVALID_SPAN
        try:
            attrs: dict[str, Any] = {
                gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value,
                gen_ai.GEN_AI_TOOL_NAME: rlm_attrs.RLM_REPL_TOOL_NAME,
                gen_ai.GEN_AI_TOOL_TYPE: "function",
                rlm_attrs.RLM_REPL_ITERATION: step.iteration,
                rlm_attrs.RLM_RUN_DEPTH: depth,
                rlm_attrs.RLM_SANDBOX_LEVEL: level,
            }
            if self.capture:
                attrs[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS] = step.code
            payload = self.payload()
            if payload is not None:
                payload.extra = {"tool_input": step.code}
            with payload_during(payload):
                span = self.handler.start_tool_span(TOOL_SPAN_NAME, attrs)
        except Exception as exc:
            contain("runtime: start execute_tool span", exc)
        tool = ToolStep(span, step.code, self)
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield tool
        except BaseException as exc:
            tool.fail(exc)
            raise

    def nested_run(self, prompt: str, context: Any, depth: int) -> RunSpan:
        """The ``invoke_agent`` span of an ``rlm_query`` run, a child of the current execution."""
        span = self._run_span(prompt, context)
        self.started(span, context, depth, None)
        return span

    def started(self, run: RunSpan, context: Any, depth: int, config: RLMConfig | None) -> None:
        """Attributes known when a recursive run starts (its context is in the sandbox, never here)."""
        try:
            if not run.span.is_recording():
                return
            attrs: dict[str, Any] = {rlm_attrs.RLM_RUN_DEPTH: depth}
            chars = context_chars(context)
            if chars is not None:
                attrs[rlm_attrs.RLM_RUN_CONTEXT_CHARS] = chars
            if config is not None:
                attrs[rlm_attrs.RLM_BUDGET_MAX_ITERATIONS] = config.max_iterations
                if config.max_tokens is not None:
                    attrs[rlm_attrs.RLM_BUDGET_MAX_TOKENS] = config.max_tokens
                if config.max_cost_usd is not None:
                    attrs[rlm_attrs.RLM_BUDGET_MAX_COST] = float(config.max_cost_usd)
            run.span.set_attributes(attrs)
        except Exception as exc:
            contain("runtime: run span attributes", exc)

    def sandbox_level(self, run: RunSpan, level: str) -> None:
        try:
            run.span.set_attribute(rlm_attrs.RLM_SANDBOX_LEVEL, level)
        except Exception as exc:
            contain("runtime: run span attributes", exc)

    @staticmethod
    def ended(outcome: Outcome, budget: Budget, *, root: bool) -> dict[str, Any]:
        """Extra attributes for ``RunSpan.finish`` of a recursive run."""
        attrs: dict[str, Any] = {rlm_attrs.RLM_RUN_STATUS: outcome.status}
        if outcome.reason:
            attrs[rlm_attrs.RLM_RUN_STOP_REASON] = outcome.reason
        if root:
            attrs[rlm_attrs.RLM_RUN_SUBCALLS] = budget.subcalls
            attrs[rlm_attrs.RLM_RUN_MAX_DEPTH] = budget.depth
        return attrs

    def record(self, model: str, status: str, iterations: int, budget: Budget) -> None:
        """Run metrics, once per root run (the tree's sub-calls and cost)."""
        instruments = self._instruments
        if instruments is None:
            return
        try:
            attrs = {gen_ai.GEN_AI_REQUEST_MODEL: model, rlm_attrs.RLM_RUN_STATUS: status}
            instruments.iterations.record(iterations, attrs)
            instruments.subcalls.record(budget.subcalls, attrs)
            if budget.priced:
                instruments.cost.record(budget.cost, attrs)
        except Exception as exc:
            contain("runtime: run metrics", exc)
