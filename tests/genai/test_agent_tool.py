"""AgentInvocation / ToolInvocation: the handler's typed agent-run and tool-execution objects.

Each starts its span through the handler it is given, ends it exactly once (a second stop or
fail does nothing), hands callbacks typed content whatever the capture policy, and puts content
on the span only when the policy includes spans.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from rlm_toolkit.callbacks import BaseCallback, CallbackSpanProcessor
from rlm_toolkit.genai import AgentInvocation, ContentMode, TelemetryHandler, ToolInvocation


class Seen(BaseCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_run_start(self, prompt: str, **kw: Any) -> None:
        self.events.append(("run_start", {"prompt": prompt}))

    def on_run_end(self, result: Any, **kw: Any) -> None:
        self.events.append(("run_end", {"result": result, "error": kw.get("error")}))

    def on_tool_start(self, tool_name: str, tool_input: Any, **kw: Any) -> None:
        self.events.append(("tool_start", {"tool_name": tool_name, "tool_input": tool_input}))

    def on_tool_end(self, tool_name: str, tool_output: Any, **kw: Any) -> None:
        self.events.append(("tool_end", {"tool_name": tool_name, "tool_output": tool_output}))

    def on_error(self, error: BaseException, **kw: Any) -> None:
        self.events.append(("error", {"error": error, "operation": kw.get("operation")}))


def _pipeline(capture: bool) -> tuple[TelemetryHandler, InMemorySpanExporter, Seen]:
    seen = Seen()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CallbackSpanProcessor([seen]))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = TelemetryHandler(tracer_provider=provider, content=ContentMode(on_span=capture))
    return handler, exporter, seen


@pytest.mark.parametrize("capture", [False, True])
def test_agent_and_tool_whole_shape(capture: bool) -> None:
    handler, exporter, seen = _pipeline(capture)
    run = AgentInvocation(handler, None, "rlm", "gpt-4o", "Summarise", {"rlm.run.depth": 0})
    with trace.use_span(run.span, end_on_exit=False):
        tool = ToolInvocation(handler, None, "repl", "print(1)")
        tool.stop("1\n", shown="1\n", attributes={"rlm.repl.output_chars": 2})
        tool.stop("again")  # exactly once
        tool.fail(RuntimeError("late"))
    result = object()
    run.stop("done!", result, "stop", {"gen_ai.usage.input_tokens": 3})
    run.fail(RuntimeError("late"))
    assert seen.events == [
        ("run_start", {"prompt": "Summarise"}),
        ("tool_start", {"tool_name": "repl", "tool_input": "print(1)"}),
        ("tool_end", {"tool_name": "repl", "tool_output": "1\n"}),
        ("run_end", {"result": result, "error": None}),
    ]
    tool_span, run_span = exporter.get_finished_spans()
    assert (tool_span.name, run_span.name) == ("execute_tool repl", "invoke_agent rlm")
    assert tool_span.parent is not None and tool_span.parent.span_id == run_span.context.span_id
    content_keys = {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
    assert dict(tool_span.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "repl",
        "gen_ai.tool.type": "function",
        "rlm.repl.output_chars": 2,
        **({"gen_ai.tool.call.arguments": "print(1)", "gen_ai.tool.call.result": "1\n"} if capture else {}),
    }
    run_attrs = dict(run_span.attributes or {})
    assert {k: v for k, v in run_attrs.items() if not k.endswith("messages")} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "rlm",
        "gen_ai.request.model": "gpt-4o",
        "rlm.run.depth": 0,
        "gen_ai.usage.input_tokens": 3,
    }
    assert ("gen_ai.input.messages" in run_attrs, "gen_ai.output.messages" in run_attrs) == (capture, capture)
    assert content_keys.isdisjoint(run_attrs)


def test_failures_reach_callbacks_with_the_error() -> None:
    handler, exporter, seen = _pipeline(False)
    run = AgentInvocation(handler, None, "rlm", "gpt-4o", "go")
    tool = ToolInvocation(handler, None, "repl", "1/0")
    reported = ZeroDivisionError("division by zero")
    tool.stop("", shown="ZeroDivisionError", error=reported, error_type="ZeroDivisionError")
    interrupt = KeyboardInterrupt()
    run.fail(interrupt)
    run.stop("never")  # already ended
    errors = [kw for name, kw in seen.events if name == "error"]
    assert [(e["error"], e["operation"]) for e in errors] == [
        (reported, "execute_tool"),
        (interrupt, "invoke_agent"),
    ]
    assert seen.events[-1] == ("run_end", {"result": None, "error": interrupt})
    tool_span, run_span = exporter.get_finished_spans()
    assert (tool_span.status.status_code, (tool_span.attributes or {})["error.type"]) == (
        StatusCode.ERROR,
        "ZeroDivisionError",
    )
    assert (run_span.status.status_code, (run_span.attributes or {})["error.type"]) == (
        StatusCode.ERROR,
        "KeyboardInterrupt",
    )
