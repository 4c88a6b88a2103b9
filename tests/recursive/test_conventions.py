"""What the latest GenAI conventions add to a recursive run (issues #11, #20): the
``gen_ai.invocation.duration`` histogram of each run, root and nested (``metrics.yaml`` @
``e9de14bafd97``, Required ``gen_ai.invocation.is_nested``), and for its tool executions
the ``gen_ai.execute_tool.duration`` histogram and, on a failed execution, the
``rlm.execute_tool.exception`` record (the conventions define no event for it); v1.41 mode
emits neither."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl

TOOL = "execute_tool repl"


@pytest.fixture
def records(otel: Otel) -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()
    assert isinstance(otel.logger_provider, LoggerProvider)
    otel.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield exporter
    rlm_toolkit.uninstrument()


@pytest.mark.parametrize("semconv", ["v1.41", "latest"])
def test_tool_duration_and_exception_event_per_mode(
    server: OpenAIServer, otel: Otel, records: InMemoryLogRecordExporter, semconv: str
) -> None:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        semconv=semconv,
    )
    server.queue_reply(repl("secret_in_code = 'do-not-export'\n1 / 0"))
    server.queue_reply(repl("FINAL('six')"))
    result = make_rlm(server, otel).run("Anything?", context="some text")
    assert (result.status, result.answer) == ("final", "six")

    tools = {s.context.span_id: s for s in otel.finished() if s.name == TOOL}
    assert len(tools) == 2
    points: list[Any] = []
    agent_points: list[Any] = []
    data = otel.metrics.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "gen_ai.execute_tool.duration":
                    points.extend(metric.data.data_points)
                if metric.name == "gen_ai.invocation.duration":
                    agent_points.extend(metric.data.data_points)
    exceptions = [
        r.log_record
        for r in records.get_finished_logs()
        if r.log_record.event_name == "rlm.execute_tool.exception"
    ]
    if semconv == "v1.41":
        assert points == [] and exceptions == [] and agent_points == []
        assert _points(otel, "gen_ai.invoke_agent.tool_calls") == []
        assert all("gen_ai.agent.name" not in (t.attributes or {}) for t in tools.values())
        return
    # the run itself: gen_ai.invocation.duration (metrics.yaml), never its prompt or context
    (agent,) = agent_points
    assert agent.count == 1 and agent.sum > 0
    assert dict(agent.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.invocation.is_nested": False,
        "gen_ai.agent.name": "rlm",
        "gen_ai.request.model": dict(otel.finished()[-1].attributes or {})["gen_ai.request.model"],
    }
    by_error = {dict(p.attributes).get("error.type"): p for p in points}
    assert set(by_error) == {"ZeroDivisionError", None}
    assert all(p.count == 1 and p.sum >= 0 for p in points)
    tool_attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "repl",
        "gen_ai.tool.type": "function",  # Recommended
        "gen_ai.agent.name": "rlm",  # Conditionally Required: the agent executing the tool
    }
    assert dict(by_error[None].attributes) == tool_attrs
    (event,) = exceptions
    assert dict(event.attributes or {}) == {**tool_attrs, "error.type": "ZeroDivisionError"}
    # the executing agent on the spans too (latest only)
    assert all(dict(t.attributes or {}).get("gen_ai.agent.name") == "rlm" for t in tools.values())
    # the run triggered both executions itself
    (calls,) = _points(otel, "gen_ai.invoke_agent.tool_calls")
    assert (calls.count, calls.sum, dict(calls.attributes)) == (1, 2, {"gen_ai.agent.name": "rlm"})
    assert event.severity_number is not None and event.severity_number.name == "WARN"
    assert event.span_id in tools and "ZeroDivisionError" in str(tools[event.span_id].status.description)
    assert "do-not-export" not in str(event.attributes) + str(event.body)


def _points(otel: Otel, name: str) -> list[Any]:
    found: list[Any] = []
    data = otel.metrics.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("semconv", ["v1.41", "latest"])
def test_nested_run_is_a_nested_invocation(server: OpenAIServer, otel: Otel, semconv: str, mode: str) -> None:
    """A nested ``rlm_query`` run is its own invocation with ``is_nested`` true, the root's is
    false, each with the run's own duration. The old
    ``gen_ai.invoke_agent.duration`` name is gone; v1.41 mode records neither."""
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, semconv=semconv
    )
    try:
        server.queue_reply(repl("inner = rlm_query('Sub-question?', 'sub context')\nFINAL(inner)"))
        server.queue_reply(repl("FINAL('from the nested run')"))
        rlm = make_rlm(server, otel)
        if mode == "sync":
            result = rlm.run("Anything?", context="some text")
        else:
            result = asyncio.run(rlm.arun("Anything?", context="some text"))
        assert (result.status, result.answer) == ("final", "from the nested run")
    finally:
        rlm_toolkit.uninstrument()
    runs = [s for s in otel.finished() if s.name == "invoke_agent rlm"]
    assert len(runs) == 2  # the root run and the nested one
    points = _points(otel, "gen_ai.invocation.duration")
    assert _points(otel, "gen_ai.invoke_agent.duration") == []
    if semconv == "v1.41":
        assert points == []
        return
    by_nesting = {dict(p.attributes)["gen_ai.invocation.is_nested"]: p for p in points}
    assert set(by_nesting) == {False, True}
    # the root run has no parent here; the nested one is a child of the root's code execution
    durations = {s.parent is not None: ((s.end_time or 0) - (s.start_time or 0)) / 1e9 for s in runs}
    for nested, point in by_nesting.items():
        assert point.count == 1 and "error.type" not in dict(point.attributes)
        assert point.sum <= durations[nested] + 0.05
    # the nested run ends inside the root's: it cannot last longer
    assert by_nesting[True].sum < by_nesting[False].sum
    # each run counts the tool executions it triggered itself: one each (the root's started
    # the nested run; the nested run's own execution is not the root's)
    (calls,) = _points(otel, "gen_ai.invoke_agent.tool_calls")
    assert (calls.count, calls.sum) == (2, 2)


@pytest.mark.parametrize("semconv", ["v1.41", "latest"])
def test_failed_run_finish_reason_per_mode(server: OpenAIServer, otel: Otel, semconv: str) -> None:
    """A run that failed never received its finish reason: latest reports ``error`` (registry.yaml
    @ e9de14bafd97) beside ``error.type`` on the span and the invocation point; v1.41 none."""
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, semconv=semconv
    )
    try:
        server.queue_fault("rate_limit")
        rlm = make_rlm(server, otel, max_retries=0)
        with pytest.raises(Exception) as raised:
            rlm.run("Anything?")
    finally:
        rlm_toolkit.uninstrument()
    (run,) = [s for s in otel.finished() if s.name == "invoke_agent rlm"]
    attrs = dict(run.attributes or {})
    assert attrs["error.type"] == type(raised.value).__qualname__
    assert attrs.get("gen_ai.response.finish_reasons") == (("error",) if semconv == "latest" else None)
    points = _points(otel, "gen_ai.invocation.duration")
    if semconv == "latest":
        (point,) = points
        assert dict(point.attributes)["error.type"] == attrs["error.type"]
        assert dict(point.attributes)["gen_ai.invocation.is_nested"] is False
    else:
        assert points == []
