"""An RLM with callbacks but no providers of its own reports where ``instrument()`` was told to,
even when those providers are not the global ones and even when the RLM was built first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder


@pytest.fixture
def uninstrumented_after() -> Iterator[None]:
    yield
    rlm_toolkit.uninstrument()


def test_callbacks_follow_the_providers_given_to_instrument(
    server: OpenAIServer, telemetry: Telemetry, uninstrumented_after: None
) -> None:
    recorder = Recorder()
    rlm = RLM.from_openai("gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url)
    rlm_toolkit.instrument(
        tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider
    )
    result = rlm.run("What is 2 + 2?")

    spans = telemetry.spans.get_finished_spans()
    names = [s.name for s in spans]
    assert any(n.startswith("chat ") for n in names), names
    assert "invoke_agent rlm" in names, names
    assert len({s.context.trace_id for s in spans}) == 1  # the run and its LLM calls: one tree
    assert result.trace_id == format(spans[0].context.trace_id, "032x")
    assert "on_llm_end" in recorder.names() and "on_run_end" in recorder.names()

    # Instrumenting again with other providers moves the same RLM's next run there.
    other_spans = InMemorySpanExporter()
    other = TracerProvider()
    other.add_span_processor(SimpleSpanProcessor(other_spans))
    try:
        rlm_toolkit.uninstrument()
        rlm_toolkit.instrument(tracer_provider=other, logger_provider=telemetry.logger_provider)
        rlm.run("And 3 + 3?")
        assert len(telemetry.spans.get_finished_spans()) == len(spans)
        moved = [s.name for s in other_spans.get_finished_spans()]
        assert "invoke_agent rlm" in moved and any(n.startswith("chat ") for n in moved), moved
    finally:
        other.shutdown()
