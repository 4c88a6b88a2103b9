"""Fixtures: SDK providers with our processors and in-memory exporters, never global ones."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from opentelemetry._logs import Logger
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

import rlm_toolkit
from rlm_toolkit.callbacks import BaseCallback, CallbackLogRecordProcessor, CallbackSpanProcessor
from rlm_toolkit.callbacks._attach import ensure_router
from rlm_toolkit.callbacks._dispatch import _warned
from rlm_toolkit.callbacks._validate import wants_tokens
from rlm_toolkit.genai import Payload, Scope, TelemetryHandler, payload_during
from rlm_toolkit.testing import OpenAIServer


@dataclass
class Otel:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    tracer: Tracer
    logger: Logger
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    #: The routing processors (they deliver the callbacks of ``scope(...)``).
    span_processor: CallbackSpanProcessor
    log_processor: CallbackLogRecordProcessor
    handler: TelemetryHandler

    def scope(self, *callbacks: Any) -> Scope:
        """A runtime scope over this pipeline whose callbacks see what happens inside it."""
        return Scope(handler=self.handler, callbacks=callbacks, wants_tokens=wants_tokens(callbacks))

    def everywhere(self, *callbacks: Any) -> None:
        """Callbacks that see every span and event of these providers (as ``instrument(callbacks=...)``)."""
        self.tracer_provider.add_span_processor(CallbackSpanProcessor(callbacks))
        self.logger_provider.add_log_record_processor(CallbackLogRecordProcessor(callbacks))


@pytest.fixture(autouse=True)
def _isolate_process_state() -> Iterator[None]:
    _warned.clear()  # "logged once" warnings: each test starts fresh
    yield
    _warned.clear()


@pytest.fixture
def otel() -> Iterator[Otel]:
    tp = TracerProvider()
    spans = InMemorySpanExporter()
    lp = LoggerProvider()
    logs = InMemoryLogRecordExporter()
    handler = TelemetryHandler(tracer_provider=tp, logger_provider=lp)
    span_processor, log_processor = ensure_router(handler)
    assert isinstance(span_processor, CallbackSpanProcessor)
    assert isinstance(log_processor, CallbackLogRecordProcessor)
    tp.add_span_processor(SimpleSpanProcessor(spans))
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Otel(
        tp,
        lp,
        tp.get_tracer("test"),
        lp.get_logger("test"),
        spans,
        logs,
        span_processor,
        log_processor,
        handler,
    )
    tp.shutdown()
    lp.shutdown()


class Recorder(BaseCallback):
    """Records (method, kwargs) of every event it receives. Never calls super().__init__()."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _rec(self, name: str, **kwargs: Any) -> None:
        self.events.append((name, kwargs))

    def on_run_start(self, **kw: Any) -> None:
        self._rec("on_run_start", **kw)

    def on_run_end(self, **kw: Any) -> None:
        self._rec("on_run_end", **kw)

    def on_llm_start(self, **kw: Any) -> None:
        self._rec("on_llm_start", **kw)

    def on_token(self, **kw: Any) -> None:
        self._rec("on_token", **kw)

    def on_llm_end(self, **kw: Any) -> None:
        self._rec("on_llm_end", **kw)

    def on_error(self, **kw: Any) -> None:
        self._rec("on_error", **kw)

    def on_retry(self, **kw: Any) -> None:
        self._rec("on_retry", **kw)

    def on_tool_start(self, **kw: Any) -> None:
        self._rec("on_tool_start", **kw)

    def on_tool_end(self, **kw: Any) -> None:
        self._rec("on_tool_end", **kw)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def text_message(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}], **extra}


START_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
}
END_ATTRS = {
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 33,
}


def chat_call(
    tracer: Tracer,
    *,
    prompt: str = "Hello!",
    answer: str = "Hi there",
    payload: bool = True,
    capture: bool = False,
    error: BaseException | None = None,
    start_attrs: dict[str, Any] | None = None,
    end_attrs: dict[str, Any] | None = None,
    raw: Any = None,
) -> Any:
    """Make one chat span the way a GenAI instrumentation does; returns the span."""
    inputs = [text_message("system", "Be brief."), text_message("user", prompt)]
    outputs = [text_message("assistant", answer, finish_reason="stop")]
    attrs = dict(START_ATTRS if start_attrs is None else start_attrs)
    if capture:
        attrs["gen_ai.input.messages"] = json.dumps(inputs)
    p = None
    if payload:
        p = Payload()
        p.request = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}
        p.input_messages = inputs
    with payload_during(p):
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attrs)
    span.set_attributes(END_ATTRS if end_attrs is None else end_attrs)
    if capture and error is None:
        span.set_attribute("gen_ai.output.messages", json.dumps(outputs))
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("error.type", type(error).__qualname__)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))
    if p is not None:
        p.output_messages = outputs if error is None else None
        p.response = raw
        p.error = error
    with payload_during(p):
        span.end()
    return span


@pytest.fixture
def caplog_callbacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="rlm_toolkit.callbacks")
    return caplog


# -- end-to-end: offline server + real client + our instrumentation ---------------------------

API_KEY = "sk-test-e2e-secret-0123456789"


@dataclass
class Stack:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter

    def instrument(self, callbacks: Any = None) -> None:
        rlm_toolkit.instrument(
            tracer_provider=self.tracer_provider,
            logger_provider=self.logger_provider,
            meter_provider=self.meter_provider,
            callbacks=callbacks,
        )


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def stack(server: OpenAIServer) -> Iterator[Stack]:
    server.reset()
    rlm_toolkit.uninstrument()  # an RLM elsewhere may have instrumented with default providers
    tp, lp, mp = TracerProvider(), LoggerProvider(), MeterProvider()
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Stack(tp, lp, mp, spans, logs)
    rlm_toolkit.uninstrument()
    tp.shutdown()
    lp.shutdown()
    mp.shutdown()


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=2)
    yield c
    c.close()


def chat(client: openai.OpenAI, text: str = "Hello!", **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        **kwargs,
    )
