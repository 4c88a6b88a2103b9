"""What the latest GenAI conventions add to a recursive run (issues #11, #20): the
``gen_ai.invoke_agent.duration`` histogram of the run, and for its tool executions
the ``gen_ai.execute_tool.duration`` histogram and, on a failed execution, the
``rlm.execute_tool.exception`` record (the conventions define no event for it); v1.41 mode
emits neither."""

from __future__ import annotations

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
                if metric.name == "gen_ai.invoke_agent.duration":
                    agent_points.extend(metric.data.data_points)
    exceptions = [
        r.log_record
        for r in records.get_finished_logs()
        if r.log_record.event_name == "rlm.execute_tool.exception"
    ]
    if semconv == "v1.41":
        assert points == [] and exceptions == [] and agent_points == []
        return
    # the run itself: gen_ai.invoke_agent.duration (metrics.yaml), never its prompt or context
    (agent,) = agent_points
    assert agent.count == 1 and agent.sum > 0
    assert dict(agent.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "rlm",
        "gen_ai.request.model": dict(otel.finished()[-1].attributes or {})["gen_ai.request.model"],
    }
    by_error = {dict(p.attributes).get("error.type"): p for p in points}
    assert set(by_error) == {"ZeroDivisionError", None}
    assert all(p.count == 1 and p.sum >= 0 for p in points)
    assert dict(by_error[None].attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "repl",
    }
    (event,) = exceptions
    assert dict(event.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "repl",
        "error.type": "ZeroDivisionError",
    }
    assert event.severity_number is not None and event.severity_number.name == "WARN"
    assert event.span_id in tools and "ZeroDivisionError" in str(tools[event.span_id].status.description)
    assert "do-not-export" not in str(event.attributes) + str(event.body)
