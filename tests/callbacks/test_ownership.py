"""The pipeline owner's contract (issue 9), over real HTTP to the offline server.

A callback processor is an ordinary SDK processor: added by hand to a provider, before or after
``instrument()``, it receives exactly what ``instrument(callbacks=...)`` gives. Two pipelines
in one process do not hear each other. A processor with no callbacks costs nothing; a shut
down provider delivers nothing; ``uninstrument()`` leaves no processor behind.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit import RLM
from rlm_toolkit.callbacks import BaseCallback, CallbackLogRecordProcessor, CallbackSpanProcessor
from rlm_toolkit.genai import TelemetryHandler, Wants
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Recorder


class Pipeline:
    """One set of SDK providers with in-memory exporters (never global)."""

    def __init__(self) -> None:
        self.tracer_provider, self.logger_provider, self.meter_provider = (
            TracerProvider(),
            LoggerProvider(),
            MeterProvider(),
        )
        self.spans, self.logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))

    def add_callbacks(self, *callbacks: Any) -> None:
        """What the README's "How they are fed" tells a user to do."""
        self.tracer_provider.add_span_processor(CallbackSpanProcessor(list(callbacks)))
        self.logger_provider.add_log_record_processor(CallbackLogRecordProcessor(list(callbacks)))

    def instrument(self, callbacks: Any = None, capture_content: Any = False) -> None:
        rlm_toolkit.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
            callbacks=callbacks,
            capture_content=capture_content,
        )

    def exported(self) -> str:
        """Every exported span and record, as text."""
        parts = [str(span.to_json()) for span in self.spans.get_finished_spans()]
        parts += [r.to_json() for r in self.logs.get_finished_logs()]
        return "\n".join(parts)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def pipeline(server: OpenAIServer) -> Iterator[Pipeline]:
    server.reset()
    rlm_toolkit.uninstrument()
    p = Pipeline()
    yield p
    rlm_toolkit.uninstrument()
    p.shutdown()


def _client(server: OpenAIServer, is_async: bool = False) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(base_url=server.base_url, api_key=API_KEY, max_retries=2)


# -- one call on every surface ------------------------------------------------------------


def _call(client: Any, surface: str, stream: bool) -> Any:
    if surface == "chat":
        return client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stream=stream
        )
    if surface == "responses":
        return client.responses.create(model="gpt-4o", input="Hi", stream=stream)
    if surface == "completions":
        return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=stream)
    return client.embeddings.create(model="text-embedding-3-small", input="Hi")


def _sync(client: Any, surface: str, stream: bool) -> None:
    result = _call(client, surface, stream)
    if stream:
        for _ in result:
            pass


def _async(client: Any, surface: str, stream: bool) -> None:
    async def go() -> None:
        result = await _call(client, surface, stream)
        if stream:
            async for _ in result:
                pass

    asyncio.run(go())


def _one_call(
    server: OpenAIServer, surface: str, is_async: bool, stream: bool, fault: str | None
) -> BaseException | None:
    server.reset()
    server.queue_reply("Hello there")
    if fault == "retry":
        server.queue_fault("rate_limit", retry_after=0)
    elif fault == "error":
        server.queue_fault("bad_request")
    client = _client(server, is_async)
    try:
        (_async if is_async else _sync)(client, surface, stream)
    except openai.APIError as exc:
        return exc
    return None


def _summary(rec: Recorder) -> list[tuple[Any, ...]]:
    """What a callback saw, without ids and times (which differ from run to run)."""
    out: list[tuple[Any, ...]] = []
    for name, kw in rec.events:
        if name == "on_llm_start":
            out.append((name, kw["prompt"], kw["model"], kw["operation"]))
        elif name == "on_llm_end":
            response = kw["response"]
            usage = response.usage
            out.append((name, response.content, usage.prompt_tokens, usage.completion_tokens))
        elif name == "on_token":
            out.append((name, kw["token"], kw["index"], kw["model"], kw["operation"]))
        elif name == "on_retry":
            out.append((name, kw["attempt"], kw["max_attempts"], type(kw["error"]).__name__))
        elif name == "on_error":
            out.append((name, type(kw["error"]).__name__))
        else:
            out.append((name,))
    return out


def test_new_user_reproduction_hand_added_processors_see_content_and_tokens(
    pipeline: Pipeline, server: OpenAIServer
) -> None:
    """The issue's reproduction: processors added by hand, then ``instrument()``."""
    rec = Recorder()
    pipeline.add_callbacks(rec)
    pipeline.instrument()
    client = _client(server)
    server.queue_reply("Hello there")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    server.queue_reply("Hello there")
    for _ in client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stream=True
    ):
        pass
    start, end = rec.events[0][1], rec.events[1][1]
    assert start["prompt"] == "Hi"
    assert end["response"].content == "Hello there"
    streamed = rec.events[2:]
    assert streamed[0][0] == "on_llm_start" and streamed[0][1]["prompt"] == "Hi"
    tokens = [kw["token"] for name, kw in streamed if name == "on_token"]
    assert "".join(tokens) == "Hello there" and len(tokens) > 1
    assert streamed[-1][0] == "on_llm_end" and streamed[-1][1]["response"].content == "Hello there"


SURFACES = [
    (surface, stream)
    for surface in ("chat", "responses", "completions", "embeddings")
    for stream in (False, True)
    if not (surface == "embeddings" and stream)
]


@pytest.mark.parametrize("fault", [None, "retry", "error"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("surface", "stream"), SURFACES)
def test_hand_added_processors_get_what_instrument_callbacks_gets(
    pipeline: Pipeline, server: OpenAIServer, surface: str, stream: bool, is_async: bool, fault: str | None
) -> None:
    by_entrance = Recorder()
    pipeline.instrument(callbacks=[by_entrance])
    error = _one_call(server, surface, is_async, stream, fault)
    assert (error is not None) == (fault == "error")
    rlm_toolkit.uninstrument()

    before, after = Recorder(), Recorder()
    pipeline.add_callbacks(before)
    pipeline.instrument()
    pipeline.add_callbacks(after)  # added while instrumented
    _one_call(server, surface, is_async, stream, fault)

    expected = _summary(by_entrance)
    assert expected, "the entrance's callback saw nothing"
    assert _summary(before) == expected
    assert _summary(after) == expected
    names = [e[0] for e in expected]
    assert names[0] == "on_llm_start" and names[-1] == ("on_error" if fault == "error" else "on_llm_end")
    assert ("on_retry" in names) == (fault == "retry")
    assert ("on_token" in names) == (stream and fault != "error")


# -- two pipelines ------------------------------------------------------------------------


def test_two_pipelines_under_concurrency_see_only_their_own_calls(server: OpenAIServer) -> None:
    rlm_toolkit.uninstrument()
    a, b = Pipeline(), Pipeline()
    rec_a, rec_b = Recorder(), Recorder()
    a.add_callbacks(rec_a)
    b.add_callbacks(rec_b)
    client = _client(server)
    rlm_a = RLM(
        client=client, model="model-a", tracer_provider=a.tracer_provider, logger_provider=a.logger_provider
    )
    rlm_b = RLM(
        client=client, model="model-b", tracer_provider=b.tracer_provider, logger_provider=b.logger_provider
    )
    runs = 8
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def work(rlm: RLM, streamed: bool) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(runs):
                if streamed:
                    with rlm.stream("Hi") as tokens:
                        for _ in tokens:
                            pass
                else:
                    rlm.run("Hi")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(rlm, streamed))
        for rlm in (rlm_a, rlm_b)
        for streamed in (False, True)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures
        for rec, model in ((rec_a, "model-a"), (rec_b, "model-b")):
            llm_starts = [kw for name, kw in rec.events if name == "on_llm_start"]
            assert len(llm_starts) == 2 * runs
            assert {kw["model"] for kw in llm_starts} == {model}
            assert rec.names.count("on_run_start") == rec.names.count("on_run_end") == 2 * runs
            assert {kw["model"] for name, kw in rec.events if name == "on_token"} == {model}
            assert {kw["prompt"] for kw in llm_starts} == {"Hi"}
        for p, model in ((a, "model-a"), (b, "model-b")):
            models = {span.attributes.get("gen_ai.request.model") for span in p.spans.get_finished_spans()}
            assert models == {model}
    finally:
        client.close()
        rlm_toolkit.uninstrument()
        a.shutdown()
        b.shutdown()


# -- cost, shutdown, uninstrument, capture -----------------------------------------------


def test_a_processor_without_callbacks_costs_nothing(pipeline: Pipeline, server: OpenAIServer) -> None:
    pipeline.tracer_provider.add_span_processor(CallbackSpanProcessor())
    pipeline.logger_provider.add_log_record_processor(CallbackLogRecordProcessor())
    pipeline.instrument()
    handler = rlm_toolkit.instrumentation.openai.OpenAIInstrumentor().handler
    assert isinstance(handler, TelemetryHandler)
    assert handler.wants() == Wants(payload=False, tokens=False)
    _one_call(server, "chat", False, True, None)
    assert not [r for r in pipeline.logs.get_finished_logs() if r.log_record.event_name == "rlm.llm.token"]
    # A callback that ignores tokens makes payloads, still no token events.
    pipeline.tracer_provider.add_span_processor(CallbackSpanProcessor([Quiet()]))
    assert handler.wants() == Wants(payload=True, tokens=False)
    pipeline.add_callbacks(Recorder())
    assert handler.wants() == Wants(payload=True, tokens=True)


class Quiet(BaseCallback):
    def on_llm_start(self, **kwargs: Any) -> None:
        pass


def test_shutting_a_provider_down_stops_delivery(server: OpenAIServer) -> None:
    rlm_toolkit.uninstrument()
    p = Pipeline()
    rec = Recorder()
    p.add_callbacks(rec)
    p.instrument()
    try:
        _one_call(server, "chat", False, True, None)
        seen = len(rec.events)
        assert seen > 2
        p.tracer_provider.shutdown()
        p.logger_provider.shutdown()
        handler = rlm_toolkit.instrumentation.openai.OpenAIInstrumentor().handler
        assert handler is not None and handler.wants() == Wants()
        _one_call(server, "chat", False, True, None)
        assert len(rec.events) == seen
    finally:
        rlm_toolkit.uninstrument()
        p.meter_provider.shutdown()


def test_uninstrument_leaves_no_owner_or_processor(pipeline: Pipeline, server: OpenAIServer) -> None:
    from rlm_toolkit.genai import log_processors_of, span_processors_of

    spans_before = span_processors_of(pipeline.tracer_provider)
    logs_before = log_processors_of(pipeline.logger_provider)
    rec = Recorder()
    pipeline.instrument(callbacks=[rec])
    assert len(span_processors_of(pipeline.tracer_provider)) == len(spans_before) + 1
    rlm_toolkit.uninstrument()
    assert span_processors_of(pipeline.tracer_provider) == spans_before
    assert log_processors_of(pipeline.logger_provider) == logs_before
    assert rlm_toolkit.instrumentation.openai.OpenAIInstrumentor().handler is None
    with _client(server) as client:
        _sync(client, "chat", True)
    assert rec.events == []


def test_uninstrument_shuts_the_private_pair_down(server: OpenAIServer) -> None:
    """No SDK provider anywhere: ``instrument(callbacks=...)`` feeds them from a private pair
    that ``uninstrument()`` shuts down again."""
    rlm_toolkit.uninstrument()
    rec = Recorder()
    rlm_toolkit.instrument(callbacks=[rec])
    try:
        handler = rlm_toolkit.instrumentation.openai.OpenAIInstrumentor().handler
        assert handler is not None
        private = handler.sdk_tracer_provider()
        assert isinstance(private, TracerProvider)
        _one_call(server, "chat", False, False, None)
        assert rec.names == ["on_llm_start", "on_llm_end"]
        probe = ShutdownProbe()
        private.add_span_processor(probe)
    finally:
        rlm_toolkit.uninstrument()
    assert probe.shut_down  # the private provider was shut down
    assert [p for p in private._active_span_processor._span_processors if p is not probe] == []


class ShutdownProbe(SpanProcessor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True


@pytest.mark.parametrize("entrance", ["by_hand", "instrument"])
def test_capture_off_exports_no_text_while_callbacks_see_it(
    pipeline: Pipeline, server: OpenAIServer, entrance: str
) -> None:
    rec = Recorder()
    if entrance == "by_hand":
        pipeline.add_callbacks(rec)
        pipeline.instrument(capture_content=False)
    else:
        pipeline.instrument(callbacks=[rec], capture_content=False)
    server.queue_reply("Secret answer text")
    with _client(server) as client:
        for _ in client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Secret prompt text"}], stream=True
        ):
            pass
    assert rec.events[0][1]["prompt"] == "Secret prompt text"
    assert rec.events[-1][1]["response"].content == "Secret answer text"
    exported = pipeline.exported()
    assert "rlm.llm.token" not in exported  # tokens reach callbacks in-process, never exporters
    for text in ("Secret", "prompt text", "answer text", API_KEY):
        assert text not in exported


def test_a_callback_can_be_found_by_handler_built_by_a_test(pipeline: Pipeline) -> None:
    """Tests build their own owner and pass it in: nothing global is consulted."""
    handler = TelemetryHandler(
        tracer_provider=pipeline.tracer_provider, logger_provider=pipeline.logger_provider
    )
    assert handler.wants() == Wants()
    pipeline.add_callbacks(Recorder())
    assert handler.wants() == Wants(payload=True, tokens=True)
    other = handler.derive(tracer_provider=TracerProvider(), logger_provider=LoggerProvider())
    assert other.wants() == Wants()
    assert other.instruments is handler.instruments
