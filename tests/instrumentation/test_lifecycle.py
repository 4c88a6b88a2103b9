"""Instrument/uninstrument symmetry, suppression, peers, routing, payloads, our own errors."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rlm_toolkit
from rlm_toolkit._instrument import active_handler
from rlm_toolkit.genai import Consumer, Invocation, Scope, current_payload, use_scope
from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
from rlm_toolkit.instrumentation.openai._targets import TARGETS, resolve

from .conftest import Otel, instrument_with

MESSAGES = [{"role": "user", "content": "hi"}]
PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def patched() -> dict[str, int]:
    """Target name -> depth of the wrapt wrapper chain on it."""
    out = {}
    for target in TARGETS:
        found = resolve(target)
        assert found is not None, target.name  # every surface exists in the installed SDK
        _, cls, method = found
        depth, obj = 0, vars(cls)[method]
        while isinstance(obj, PROXY):
            depth, obj = depth + 1, obj.__wrapped__
        out[f"{cls.__module__}.{target.name}"] = depth
    return out


def test_instrument_twice_and_uninstrument_leave_no_wrapper(otel: Otel) -> None:
    assert set(patched().values()) == {0}
    instrument_with(otel)
    instrument_with(otel)
    OpenAIInstrumentor().instrument()
    assert set(patched().values()) == {1}
    rlm_toolkit.uninstrument()
    assert set(patched().values()) == {0}


def test_entry_point_and_dependencies() -> None:
    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "rlm_openai"]
    assert ep.load() is OpenAIInstrumentor
    assert tuple(OpenAIInstrumentor().instrumentation_dependencies()) == ("openai >= 1.40",)


def test_capture_content_nonsense_raises() -> None:
    with pytest.raises(ValueError, match="span_only"):
        rlm_toolkit.instrument(capture_content="sometimes")
    assert set(patched().values()) == {0}


def test_suppressed(plain_instrumented: Otel, client: openai.OpenAI, server: Any) -> None:
    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert plain_instrumented.spans() == []
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(plain_instrumented.spans()) == 1


def test_peer_instrumentation_both_work(otel: Otel, client: openai.OpenAI, server: Any) -> None:
    """A peer wraps after us: two spans, the peer's outermost; uninstrument splices us out."""
    from openai.resources.chat.completions.completions import Completions

    tracer = otel.tracer_provider.get_tracer("peer")

    def peer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with tracer.start_as_current_span("peer chat"):
            return wrapped(*args, **kwargs)

    instrument_with(otel)
    wrapt.wrap_function_wrapper(Completions, "create", peer)
    try:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        ours, theirs = otel.spans()
        assert (ours.name, theirs.name) == ("chat gpt-4o", "peer chat")
        assert ours.parent is not None and ours.parent.span_id == theirs.context.span_id
        rlm_toolkit.uninstrument()
        assert (
            patched()["openai.resources.chat.completions.completions.Completions.create"] == 1
        )  # the peer's
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert [s.name for s in otel.spans()][2:] == ["peer chat"]
    finally:
        rlm_toolkit.uninstrument()
        Completions.create = vars(Completions)["create"].__wrapped__


def test_scope_routes_to_its_tracer(plain_instrumented: Otel, client: openai.OpenAI, server: Any) -> None:
    exporter = InMemorySpanExporter()
    private = TracerProvider()
    private.add_span_processor(SimpleSpanProcessor(exporter))
    handler = active_handler()
    assert handler is not None
    with use_scope(Scope(handler=handler.derive(tracer_provider=private))):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert plain_instrumented.spans() == []
    assert [s.name for s in exporter.get_finished_spans()] == ["chat gpt-4o"]


class PayloadSpans(SpanProcessor, Consumer):  # type: ignore[misc]
    """Any processor that reads the in-process payload says so (``wants_payload``)."""

    wants_payload = True

    def __init__(self) -> None:
        self.starts: list[Any] = []
        self.ends: list[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        p = current_payload()
        self.starts.append(p and (p.request, p.input_messages))

    def on_end(self, span: Any) -> None:
        p = current_payload()
        self.ends.append(p and (p.output_messages, p.response))


def test_payload_when_capture_is_off(plain_instrumented: Otel, client: openai.OpenAI, server: Any) -> None:
    spy = PayloadSpans()
    plain_instrumented.tracer_provider.add_span_processor(spy)
    server.queue_reply("secret reply")
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    ((request, inputs),) = spy.starts
    assert request["messages"] is MESSAGES
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    ((outputs, obj),) = spy.ends
    assert obj is response
    assert outputs == [
        {"role": "assistant", "parts": [{"type": "text", "content": "secret reply"}], "finish_reason": "stop"}
    ]
    attrs = dict(plain_instrumented.span().attributes or {})
    assert "secret reply" not in repr(attrs)  # nothing of it was exported
    assert current_payload() is None


def test_token_events_only_when_wanted(plain_instrumented: Otel, client: openai.OpenAI, server: Any) -> None:
    server.queue_reply("a b")
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert plain_instrumented.logs("rlm.llm.token") == []
    server.queue_reply("a b")
    consumer = plain_instrumented.want_tokens()
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(consumer.events) == len(texts) > 0
    assert all(attrs == {"rlm.token.index": i} for i, (_, attrs, _) in enumerate(consumer.events))
    assert "".join(token or "" for _, _, token in consumer.events) == "".join(texts) == "a b"
    # In-process only: an in-process need never becomes exported records (opt-in export is
    # RLM_EXPORT_TOKEN_EVENTS, tested end to end with the callbacks).
    assert plain_instrumented.logs("rlm.llm.token") == []


def test_our_errors_never_reach_the_app(
    plain_instrumented: Otel, client: openai.OpenAI, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLM_TOOLKIT_STRICT", "0")

    def broken(self: Invocation, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected fault in our extractor")

    monkeypatch.setattr(Invocation, "start", broken)
    server.queue_reply("still fine")
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content == "still fine"
    monkeypatch.undo()
    monkeypatch.setenv("RLM_TOOLKIT_STRICT", "0")
    from rlm_toolkit.instrumentation.openai import _chunks

    monkeypatch.setattr(_chunks.ChatChunks, "on_chunk", broken)
    monkeypatch.setattr(Invocation, "_end_attributes", broken)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        if c.choices
    )
    assert text
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content
    assert len(plain_instrumented.spans()) == 2  # our failure still ended both spans


def test_instrument_with_callbacks(otel: Otel, client: openai.OpenAI, server: Any) -> None:
    from rlm_toolkit.callbacks import BaseCallback, CallbackSpanProcessor
    from rlm_toolkit.genai._handler import span_processors_of

    def fed(provider: Any) -> list[Any]:
        return [
            p.fixed_callbacks for p in span_processors_of(provider) if isinstance(p, CallbackSpanProcessor)
        ]

    class Seen(BaseCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.ends: list[Any] = []

        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            self.ends.append(response)

    seen = Seen()
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider, logger_provider=otel.logger_provider, callbacks=[seen]
    )
    try:
        assert fed(otel.tracer_provider) == [(seen,)]
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(seen.ends) == 1
        assert len(otel.spans()) == 1  # same providers: exported and seen
    finally:
        rlm_toolkit.uninstrument()
    assert fed(otel.tracer_provider) == []


@pytest.mark.parametrize(
    ("argument", "method"),
    [("tracer_provider", "get_tracer"), ("meter_provider", "get_meter"), ("logger_provider", "get_logger")],
)
def test_instrument_rejects_a_non_provider_before_patching(argument: str, method: str) -> None:
    import openai.resources.chat.completions as completions

    before = completions.Completions.create
    with pytest.raises(TypeError) as info:
        rlm_toolkit.instrument(**{argument: "x"})
    message = str(info.value)
    assert message == (
        f"instrument({argument}=...): expected an OpenTelemetry {argument.replace('_', ' ')} "
        f"(an object with .{method}()) or None, got str 'x'"
    )
    assert "\n" not in message
    assert completions.Completions.create is before  # nothing patched
    assert active_handler() is None
