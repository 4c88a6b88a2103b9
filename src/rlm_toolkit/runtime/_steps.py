"""Every telemetry touch-point of a recursive run, in one place.

:class:`Steps` is given the run's pipeline owner (``TelemetryHandler``: tracer, content policy,
consumers), its scope (callbacks) and the run metrics by ``RLM`` when a run starts; nothing
here reads a global for routing. Each code execution is a
:class:`~rlm_toolkit.genai.ToolInvocation` (``execute_tool repl``) made with that handler and
current while the code runs (``llm_query`` sub-calls made meanwhile are its children because
it is current on the host thread that services them); a nested ``rlm_query`` run is a
:class:`RunSpan`. This module adds what only the REPL knows (iteration, depth, sandbox level,
the sandbox's result) and the run metrics; the invocations own the span lifecycle and the
content policy (code and output on the span only when capture includes spans; callbacks get
them as ``tool_input`` / ``tool_output`` either way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import Span

from rlm_toolkit import attributes as rlm_attrs
from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Scope, TelemetryHandler, ToolInvocation
from rlm_toolkit.runtime._budget import Budget, RLMConfig
from rlm_toolkit.runtime._prompts import context_chars
from rlm_toolkit.runtime._recursive import Execute, Outcome
from rlm_toolkit.runtime._run_span import RunSpan
from rlm_toolkit.sandbox import ExecutionResult
from rlm_toolkit.version import __version__


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
    """One ``execute_tool repl`` execution: a :class:`~rlm_toolkit.genai.ToolInvocation`
    started by :meth:`Steps.execution`, ended once with the sandbox's result."""

    __slots__ = ("tool",)

    def __init__(self, tool: ToolInvocation) -> None:
        self.tool = tool

    @property
    def span(self) -> Span:
        return self.tool.span

    def finish(self, result: ExecutionResult) -> None:
        """End with the sandbox's ``ExecutionResult`` (an error or kill makes the span an error)."""
        if self.tool.ended:
            return
        error_type: str | None = None
        attrs: dict[str, Any] = {}
        shown: str | None = None
        try:
            error_type = _error_type(result)
            attrs[rlm_attrs.RLM_REPL_OUTPUT_CHARS] = len(result.output)
            attrs[rlm_attrs.RLM_RUN_SUBCALLS] = result.queries
            if result.killed:
                attrs[rlm_attrs.RLM_REPL_KILLED] = result.killed
            if result.final is not None or (
                isinstance(result.answer, dict) and result.answer.get("ready") is True
            ):
                attrs[rlm_attrs.RLM_REPL_FINAL] = True
            shown = result.output + (f"\n{result.error}" if result.error else "")
        except Exception as exc:
            contain("runtime: execute_tool attributes", exc)
        error = ReplError(str(result.error or error_type)) if error_type is not None else None
        self.tool.stop(result.output, shown, attrs, error, error_type)

    def fail(self, error: BaseException) -> None:
        """End as failed because the host side raised (our bug, or an interrupt)."""
        self.tool.fail(error)


class Steps:
    """The telemetry of one run tree (root and nested runs share it), reported through the
    run's pipeline owner."""

    __slots__ = ("_instruments", "_run_span", "handler", "scope")

    def __init__(
        self,
        handler: TelemetryHandler,
        scope: Scope | None,
        instruments: RunInstruments | None,
        run_span: Callable[[str, Any], RunSpan],
    ) -> None:
        """``handler``: the pipeline owner the run reports through (the ``execute_tool``
        invocations are made with it: its tracer, content policy and consumers); ``scope``: the
        run's scope, whose callbacks get the tool events; ``run_span(prompt, context)``: starts
        a run span the way the root's was started (a nested ``rlm_query`` run's), under the
        current span. Called on the run's thread."""
        self.handler = handler
        self.scope = scope
        self._instruments = instruments
        self._run_span = run_span

    @contextmanager
    def execution(self, step: Execute, depth: int, level: str) -> Iterator[ToolStep]:
        """The ``execute_tool`` span, current while the code runs; the body calls ``finish``."""
        attrs: dict[str, Any] = {
            rlm_attrs.RLM_REPL_ITERATION: step.iteration,
            rlm_attrs.RLM_RUN_DEPTH: depth,
            rlm_attrs.RLM_SANDBOX_LEVEL: level,
        }
        tool = ToolStep(
            ToolInvocation(self.handler, self.scope, rlm_attrs.RLM_REPL_TOOL_NAME, step.code, attrs)
        )
        try:
            with trace.use_span(
                tool.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
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
