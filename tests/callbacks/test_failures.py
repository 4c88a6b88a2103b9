"""on_error fires once per failure, on the innermost failed span; a failed run ends with on_run_end(error=...)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, Status, StatusCode, Tracer, format_span_id, set_span_in_context

from rlm_toolkit.callbacks import (
    BaseCallback,
    CallbackSpanExporter,
    CallbackSpanProcessor,
    MetricsCallback,
    SpanError,
)
from rlm_toolkit.genai import Payload, payload_during, use_scope
from rlm_toolkit.runtime import RLM
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, Recorder, Stack

RUN = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "rlm", "gen_ai.request.model": "gpt-4o"}
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "repl"}


def ids(recorder: Recorder, *spans: Any) -> list[tuple[str, str]]:
    """(method, which span) for every event: a repeated on_error shows up as a second row."""
    who = {format_span_id(s.context.span_id): f"s{i}" for i, s in enumerate(spans)}
    return [(name, who.get(kw.get("run_id") or "", "?")) for name, kw in recorder.events]


def fail(
    span: Span, error: BaseException, *, payload: bool, record: bool = True, status: str | None = None
) -> None:
    """End ``span`` failed, the way an instrumentation does (exception event unless told not to)."""
    span.set_attribute("error.type", type(error).__qualname__)
    if record:
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, str(error) if status is None else status))
    p = None
    if payload:
        p = Payload()
        p.error = error
    with payload_during(p):
        span.end()


def start(tracer: Tracer, attrs: dict[str, Any], parent: Span | None = None, name: str | None = None) -> Span:
    context = set_span_in_context(parent) if parent is not None else None
    return tracer.start_span(name or str(attrs["gen_ai.operation.name"]), context=context, attributes=attrs)


# -- end to end: RLM over real HTTP ---------------------------------------------------------


def make_rlm(server: OpenAIServer, stack: Stack, callbacks: list[Any]) -> RLM:
    return RLM.from_openai(
        "gpt-4o",
        callbacks=callbacks,
        base_url=server.base_url,
        api_key="x",
        max_retries=0,
        tracer_provider=stack.tracer_provider,
        logger_provider=stack.logger_provider,
    )


def test_failed_run_gives_one_on_error_and_one_failed_on_run_end(stack: Stack, server: OpenAIServer) -> None:
    rec, metrics = Recorder(), MetricsCallback()
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError) as info:
        make_rlm(server, stack, [rec, metrics]).run("Hello!")
    llm, run = stack.spans.get_finished_spans()
    assert [s.status.status_code for s in (llm, run)] == [StatusCode.ERROR, StatusCode.ERROR]
    assert ids(rec, llm, run) == [
        ("on_run_start", "s1"),
        ("on_llm_start", "s0"),
        ("on_error", "s0"),
        ("on_run_end", "s1"),
    ]
    error_kw, end_kw = rec.events[2][1], rec.events[3][1]
    assert (error_kw["error"], error_kw["operation"], error_kw["error_type"]) == (
        info.value,
        "chat",
        "BadRequestError",
    )
    assert (end_kw["result"], end_kw["error"], end_kw["operation"]) == (None, info.value, "invoke_agent")
    m = metrics.get_metrics()
    assert (m["total_calls"], m["errors"]) == (1, 1)


async def test_failed_arun_gives_one_on_error(stack: Stack, server: OpenAIServer) -> None:
    rec = Recorder()
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError) as info:
        await make_rlm(server, stack, [rec]).arun("Hello!")
    assert rec.names == ["on_run_start", "on_llm_start", "on_error", "on_run_end"]
    assert rec.events[2][1]["error"] is info.value
    assert rec.events[3][1]["error"] is info.value


def test_tutorial_retry_handler_reports_the_final_error_once(
    stack: Stack, server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    class RetryHandler(BaseCallback):  # tutorial part 4 (sleep shortened), never calls super().__init__()
        def __init__(self, max_retries=3, backoff=2.0):  # type: ignore[no-untyped-def]
            self.max_retries = max_retries
            self.backoff = backoff
            self.retry_count = 0

        def on_retry(self, attempt, max_attempts, error, **kwargs):  # type: ignore[no-untyped-def]
            print(f"⚠️ Retry {attempt}/{max_attempts}: {error}")
            self.retry_count += 1

        def on_error(self, error, **kwargs):  # type: ignore[no-untyped-def]
            print(f"❌ Final error after {self.retry_count} retries: {error}")

    server.queue_fault("rate_limit", times=2, retry_after=0.01)
    rlm = RLM.from_openai(
        "gpt-4o",
        callbacks=[RetryHandler()],
        base_url=server.base_url,
        api_key="x",
        max_retries=1,
        tracer_provider=stack.tracer_provider,
        logger_provider=stack.logger_provider,
    )
    with pytest.raises(openai.RateLimitError):
        rlm.run("Hello!")
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["⚠️ Retry 1/1", "❌ Final error after 1 retries"]


# -- in process, by hand --------------------------------------------------------------------


def test_failure_of_the_run_itself_still_reaches_on_error(otel: Otel) -> None:
    rec = Recorder()
    error = RuntimeError("strategy broke")
    with use_scope(otel.scope(rec)):
        run = start(otel.tracer, RUN)
        chat = start(otel.tracer, CHAT, run)
        chat.end()  # the call succeeded
        fail(run, error, payload=True, record=False, status="RuntimeError")
    assert ids(rec, chat, run) == [
        ("on_run_start", "s1"),
        ("on_llm_start", "s0"),
        ("on_llm_end", "s0"),
        ("on_error", "s1"),
        ("on_run_end", "s1"),
    ]
    assert rec.events[3][1]["error"] is error
    assert (rec.events[4][1]["error"], rec.events[4][1]["result"]) == (error, None)


def test_different_exception_objects_are_two_failures(otel: Otel) -> None:
    rec = Recorder()
    with use_scope(otel.scope(rec)):
        run = start(otel.tracer, RUN)
        chat = start(otel.tracer, CHAT, run)
        fail(chat, ValueError("bad"), payload=True)
        fail(run, ValueError("bad"), payload=True)  # same type and text, but a new exception
    assert [n for n in rec.names if n == "on_error"] == ["on_error", "on_error"]


def test_a_wrapping_exception_is_the_same_failure(otel: Otel) -> None:
    rec = Recorder()
    inner = ValueError("bad")
    try:
        raise RuntimeError("run failed") from inner
    except RuntimeError as exc:
        outer = exc
    with use_scope(otel.scope(rec)):
        run = start(otel.tracer, RUN)
        chat = start(otel.tracer, CHAT, run)
        fail(chat, inner, payload=True)
        fail(run, outer, payload=True)
    assert ids(rec, chat, run)[2:] == [("on_error", "s0"), ("on_run_end", "s1")]
    assert rec.events[3][1]["error"] is outer


def test_a_failed_tool_step_inside_a_failed_run_reports_once(otel: Otel) -> None:
    rec = Recorder()
    error = ZeroDivisionError("division by zero")
    with use_scope(otel.scope(rec)):
        run = start(otel.tracer, RUN)
        tool = start(otel.tracer, TOOL, run)
        fail(tool, error, payload=True)
        fail(run, error, payload=True)
    assert ids(rec, tool, run) == [
        ("on_run_start", "s1"),
        ("on_tool_start", "s0"),
        ("on_error", "s0"),
        ("on_run_end", "s1"),
    ]
    assert rec.events[2][1]["tool_name"] == "repl"


def test_the_failure_climbs_through_spans_of_other_kinds(otel: Otel) -> None:
    rec = Recorder()
    error = ValueError("bad")
    with use_scope(otel.scope(rec)):
        run = start(otel.tracer, RUN)
        step = start(otel.tracer, {"app.step": 1}, run, name="app step")  # not a GenAI span
        chat = start(otel.tracer, CHAT, step)
        fail(chat, error, payload=True)
        fail(step, error, payload=False)
        fail(run, error, payload=True)
    assert ids(rec, chat, run)[2:] == [("on_error", "s0"), ("on_run_end", "s1")]
    assert (otel.span_processor._spans, otel.span_processor._links, len(otel.span_processor._failures)) == (
        {},
        {},
        0,
    )


def test_a_callback_that_did_not_see_the_child_still_hears_of_the_failure(otel: Otel) -> None:
    everywhere, run_only = Recorder(), Recorder()
    error = ValueError("bad")
    otel.everywhere(everywhere)
    with use_scope(otel.scope(run_only)):
        run = start(otel.tracer, RUN)
    chat = start(otel.tracer, CHAT, run)  # started outside the scope: only the global callback sees it
    fail(chat, error, payload=True)
    fail(run, error, payload=True)
    assert ids(everywhere, chat, run) == [
        ("on_run_start", "s1"),
        ("on_llm_start", "s0"),
        ("on_error", "s0"),
        ("on_run_end", "s1"),
    ]
    assert ids(run_only, chat, run) == [("on_run_start", "s1"), ("on_error", "s1"), ("on_run_end", "s1")]


# -- foreign spans: no payload, matched by error.type and message ----------------------------


@pytest.mark.parametrize(
    ("parent_error", "parent_status", "parent_records", "expected_errors"),
    [
        (ValueError("bad"), None, True, 1),  # exception event with the same type and message
        (ValueError("bad"), "ValueError: bad", False, 1),  # only "Type: message" in the status
        (ValueError("bad"), "ValueError", False, 1),  # the parent records no message: type decides
        (ValueError("worse"), None, True, 2),  # another message
        (KeyError("bad"), None, True, 2),  # another type
    ],
)
def test_foreign_spans_match_on_error_type_and_message(
    otel: Otel,
    parent_error: BaseException,
    parent_status: str | None,
    parent_records: bool,
    expected_errors: int,
) -> None:
    rec = Recorder()
    with use_scope(otel.scope(rec)):
        agent = start(otel.tracer, {"gen_ai.operation.name": "invoke_agent"}, name="invoke_agent helper")
        chat = start(otel.tracer, CHAT, agent)
        fail(chat, ValueError("bad"), payload=False)
        fail(agent, parent_error, payload=False, record=parent_records, status=parent_status)
    errors = [kw for name, kw in rec.events if name == "on_error"]
    assert len(errors) == expected_errors
    assert errors[0]["run_id"] == format_span_id(chat.context.span_id)
    assert isinstance(errors[0]["error"], SpanError)
    (run_end,) = [kw for name, kw in rec.events if name == "on_run_end"]
    assert run_end["result"] is None and isinstance(run_end["error"], SpanError)


def test_siblings_and_other_traces_are_separate_failures(otel: Otel) -> None:
    rec = Recorder()
    with use_scope(otel.scope(rec)):
        agent = start(otel.tracer, {"gen_ai.operation.name": "invoke_agent"})
        first, second = start(otel.tracer, CHAT, agent), start(otel.tracer, CHAT, agent)
        fail(first, ValueError("bad"), payload=False)
        fail(second, ValueError("bad"), payload=False)  # a sibling is not an ancestor
        agent.end()
        other = start(otel.tracer, {"gen_ai.operation.name": "invoke_agent"})  # a new trace
        fail(other, ValueError("bad"), payload=False)
    assert ids(rec, first, second, agent, other) == [
        ("on_run_start", "s2"),
        ("on_llm_start", "s0"),
        ("on_llm_start", "s1"),
        ("on_error", "s0"),
        ("on_error", "s1"),
        ("on_run_end", "s2"),
        ("on_run_start", "s3"),
        ("on_error", "s3"),
        ("on_run_end", "s3"),
    ]
    assert rec.events[5][1]["error"] is None  # a run that succeeded ends with error=None


# -- bounded state ------------------------------------------------------------------------------


def test_ten_thousand_failed_runs_leave_no_state() -> None:
    metrics = MetricsCallback()
    processor = CallbackSpanProcessor([metrics])
    tp = TracerProvider()
    tp.add_span_processor(processor)
    tracer = tp.get_tracer("t")
    if True:  # the callback is the processor's own (no scope needed)
        for i in range(10_000):
            error = RuntimeError(f"failure {i}")
            run = start(tracer, RUN)
            step = start(tracer, {}, run, name="app step")
            chat = start(tracer, CHAT, step)
            fail(chat, error, payload=True, record=False)
            step.end()
            fail(run, error, payload=True, record=False)
            if i == 5_000:
                assert (len(processor._spans), len(processor._links), len(processor._failures)) == (0, 0, 0)
    assert (processor._spans, processor._links, len(processor._failures)) == ({}, {}, 0)
    m = metrics.get_metrics()
    assert (m["errors"], m["total_calls"]) == (10_000, 10_000)


def test_exporter_table_is_capped_when_parents_never_arrive() -> None:
    tp = TracerProvider()
    memory = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(memory))
    tracer = tp.get_tracer("t")
    for _ in range(5_000):
        run = start(tracer, RUN)
        fail(start(tracer, CHAT, run), ValueError("bad"), payload=False)  # the run never ends
    chats = memory.get_finished_spans()
    exporter = CallbackSpanExporter([Recorder()])
    exporter.export(chats)
    assert len(exporter._failures) == 4096


# -- exporter replay ------------------------------------------------------------------------------


def _rlm_like_failed_trace(tracer: Tracer) -> tuple[Span, Span]:
    """What RLM exports for a failed run: the chat span records the exception, the run span only
    error.type with the type name as status description."""
    run = start(tracer, RUN, name="invoke_agent rlm")
    chat = start(tracer, {**CHAT, "gen_ai.input.messages": json.dumps([])}, run, name="chat gpt-4o")
    chat.set_attribute("gen_ai.provider.name", "openai")
    fail(chat, ValueError("Error code: 400"), payload=False)
    fail(run, ValueError("Error code: 400"), payload=False, record=False, status="ValueError")
    return chat, run


def test_exporter_replays_a_failed_run_with_one_on_error() -> None:
    tp = TracerProvider()
    memory = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(memory))
    chat, run = _rlm_like_failed_trace(tp.get_tracer("t"))
    rec = Recorder()
    CallbackSpanExporter([rec]).export(memory.get_finished_spans())
    assert ids(rec, chat, run) == [
        ("on_run_start", "s1"),
        ("on_llm_start", "s0"),
        ("on_error", "s0"),
        ("on_run_end", "s1"),
    ]
    assert str(rec.events[2][1]["error"]) == "ValueError: Error code: 400"


def test_exporter_matches_a_parent_from_a_later_batch() -> None:
    tp = TracerProvider()
    memory = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(memory))
    chat, run = _rlm_like_failed_trace(tp.get_tracer("t"))
    spans: list[ReadableSpan] = list(memory.get_finished_spans())
    rec = Recorder()
    exporter = CallbackSpanExporter([rec])
    exporter.export(spans[:1])
    exporter.export(spans[1:])
    assert ids(rec, chat, run) == [
        ("on_llm_start", "s0"),
        ("on_error", "s0"),
        ("on_run_start", "s1"),
        ("on_run_end", "s1"),
    ]
    assert len(exporter._failures) == 0


def test_builtins_report_a_failed_run_once(stack: Stack, server: OpenAIServer, tmp_path: Any) -> None:
    import io

    from rich.console import Console

    from rlm_toolkit.callbacks import ConsoleCallback, FileLogCallback

    out = io.StringIO()
    console = ConsoleCallback(verbose=True, console=Console(file=out, width=200, color_system=None))
    file_log = FileLogCallback(tmp_path / "log.jsonl")
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError):
        make_rlm(server, stack, [console, file_log]).run("Hello!")
    file_log.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["▶", "→", "✗", "■"]
    assert lines[2].startswith("✗ chat gpt-4o · BadRequestError: Error code: 400")
    assert lines[3].startswith("■ run failed · BadRequestError · ")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["event"], r["operation"], r.get("error_type")) for r in records] == [
        ("run_start", "invoke_agent", None),
        ("llm_start", "chat", None),
        ("error", "chat", "BadRequestError"),
        ("run_end", "invoke_agent", "BadRequestError"),
    ]


def test_failures_on_many_threads_are_each_reported_once() -> None:
    import threading

    metrics = MetricsCallback()
    processor = CallbackSpanProcessor([metrics])
    tp = TracerProvider()
    tp.add_span_processor(processor)
    tracer = tp.get_tracer("t")
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for i in range(500):
            error = RuntimeError(f"failure {i}")  # the same text on every thread: identity decides
            run = start(tracer, RUN)
            chat = start(tracer, CHAT, run)
            fail(chat, error, payload=True)
            fail(run, error, payload=True, record=False)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metrics.get_metrics()["errors"] == 2_000
    assert (processor._spans, processor._links, len(processor._failures)) == ({}, {}, 0)
