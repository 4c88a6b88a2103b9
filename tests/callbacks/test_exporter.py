"""CallbackSpanExporter: replay finished spans; behind a BatchSpanProcessor, off the app thread."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, format_span_id, set_span_in_context

from rlm_toolkit.callbacks import BaseCallback, CallbackSpanExporter

from .conftest import Recorder, text_message


def _trace(tracer: Any) -> None:
    """A run with a chat call (one retry, captured content), a tool step and a failed call."""
    run = tracer.start_span("invoke_agent rlm", attributes={"gen_ai.operation.name": "invoke_agent"})
    ctx = set_span_in_context(run)
    chat = tracer.start_span(
        "chat gpt-4o",
        context=ctx,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps([text_message("user", "Hello!")]),
        },
    )
    chat.add_event(
        "rlm.retry", {"rlm.retry.attempt": 1, "rlm.retry.max_retries": 2, "error.type": "RateLimitError"}
    )
    chat.set_attributes(
        {
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.output.messages": json.dumps([text_message("assistant", "Hi!")]),
        }
    )
    chat.end()
    tool = tracer.start_span(
        "execute_tool repl",
        context=ctx,
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "repl"},
    )
    tool.end()
    bad = tracer.start_span("chat gpt-4o", context=ctx, attributes={"gen_ai.operation.name": "chat"})
    bad.set_attribute("error.type", "APIConnectionError")
    bad.set_status(Status(StatusCode.ERROR, "connection refused"))
    bad.end()
    tracer.start_span("GET /unrelated", context=ctx).end()
    run.end()


def test_replay_a_saved_trace_in_time_order() -> None:
    tp = TracerProvider()
    memory = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(memory))
    _trace(tp.get_tracer("t"))
    spans = memory.get_finished_spans()  # children first, as exporters receive them
    cb = Recorder()
    assert CallbackSpanExporter([cb]).export(spans).name == "SUCCESS"
    assert cb.names == [
        "on_run_start",
        "on_llm_start",
        "on_retry",
        "on_llm_end",
        "on_tool_start",
        "on_tool_end",
        "on_llm_start",
        "on_error",
        "on_run_end",
    ]
    run_id = format_span_id(spans[-1].context.span_id)
    assert cb.events[1][1]["prompt"] == "Hello!"
    assert cb.events[1][1]["parent_run_id"] == run_id
    first_end = cb.events[3][1]["response"]
    assert (first_end.content, first_end.usage.total_tokens, first_end.raw) == ("Hi!", 12, None)
    retry = cb.events[2][1]
    assert (retry["attempt"], retry["max_attempts"], str(retry["error"]), retry["model"]) == (
        1,
        2,
        "RateLimitError",
        "gpt-4o",
    )
    assert (retry["run_id"], retry["parent_run_id"]) == (cb.events[1][1]["run_id"], run_id)
    assert retry["start_time"] == retry["timestamp"]
    assert str(cb.events[7][1]["error"]) == "APIConnectionError: connection refused"
    assert cb.events[-1][1]["run_id"] == run_id


def test_behind_batch_processor_a_slow_callback_blocks_neither_app_nor_other_exporters() -> None:
    class Sleepy(BaseCallback):
        def __init__(self) -> None:
            self.threads: set[str] = set()
            self.calls = 0

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            time.sleep(0.2)
            self.threads.add(threading.current_thread().name)
            self.calls += 1

    sleepy = Sleepy()
    tp = TracerProvider()
    memory = InMemorySpanExporter()
    batch = BatchSpanProcessor(CallbackSpanExporter([sleepy]), schedule_delay_millis=10)
    tp.add_span_processor(batch)
    tp.add_span_processor(SimpleSpanProcessor(memory))
    tracer = tp.get_tracer("t")
    began = time.perf_counter()
    for _ in range(3):
        tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
    app_elapsed = time.perf_counter() - began
    exported_now = len(memory.get_finished_spans())
    assert app_elapsed < 0.15, "the app's thread waited for a callback"
    assert exported_now == 3, "another exporter was delayed by the slow callback"
    deadline = time.monotonic() + 10
    while sleepy.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sleepy.calls == 3
    assert threading.current_thread().name not in sleepy.threads
    tp.shutdown()


def test_exporter_isolates_raising_callbacks() -> None:
    class Raising(BaseCallback):
        def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
            raise RuntimeError("boom")

    good = Recorder()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(CallbackSpanExporter([Raising(), good])))
    tp.get_tracer("t").start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
    assert good.names == ["on_llm_start", "on_llm_end"]
