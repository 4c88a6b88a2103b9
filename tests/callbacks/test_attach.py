"""ensure_router / attach_callbacks / validate_callbacks / wants_tokens, through handlers the
tests build themselves."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider

from rlm_toolkit.callbacks import (
    AsyncBaseCallback,
    BaseCallback,
    CallbackLogRecordProcessor,
    CallbackSpanProcessor,
    ConsoleCallback,
    MetricsCallback,
    StreamingCallback,
)
from rlm_toolkit.callbacks._attach import attach_callbacks, ensure_router
from rlm_toolkit.callbacks._validate import validate_callbacks, wants_tokens
from rlm_toolkit.genai import Scope, TelemetryHandler, Wants, use_scope

from .conftest import Recorder, chat_call


def _span_processors(tp: TracerProvider) -> list[Any]:
    return [p for p in tp._active_span_processor._span_processors if isinstance(p, CallbackSpanProcessor)]


def _log_processors(lp: LoggerProvider) -> list[Any]:
    return [
        p
        for p in lp._multi_log_record_processor._log_record_processors
        if isinstance(p, CallbackLogRecordProcessor)
    ]


def test_a_router_is_attached_once_and_delivers_its_scopes_callbacks() -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    handler = TelemetryHandler(tracer_provider=tp, logger_provider=lp)
    first = ensure_router(handler)
    second = ensure_router(handler.derive())  # another handler over the same providers
    assert first == second and None not in first
    assert len(_span_processors(tp)) == 1
    assert len(_log_processors(lp)) == 1
    cb, other = Recorder(), Recorder()
    assert handler.wants() == Wants()  # a router alone wants nothing
    scope = Scope(handler=handler, callbacks=(cb,))
    assert handler.wants(scope) == Wants(payload=True, tokens=False)
    with use_scope(scope):
        chat_call(handler.tracer)
    # A scope whose handler reports elsewhere is not this router's to deliver.
    elsewhere = TelemetryHandler(tracer_provider=TracerProvider(), logger_provider=LoggerProvider())
    with use_scope(Scope(handler=elsewhere, callbacks=(other,))):
        chat_call(handler.tracer)
    assert cb.names == ["on_llm_start", "on_llm_end"]
    assert other.names == []


def test_without_sdk_providers_a_private_pair_is_made_once() -> None:
    handler = TelemetryHandler(tracer_provider=NoOpTracerProvider(), logger_provider=NoOpLoggerProvider())
    assert handler.sdk_tracer_provider() is None
    private = handler.in_process()
    assert private is handler.in_process()
    tp, lp = private.sdk_tracer_provider(), private.sdk_logger_provider()
    assert isinstance(tp, TracerProvider) and isinstance(lp, LoggerProvider)
    assert private.tracer.start_span("x").is_recording()  # sampled, so callbacks fire
    rec = Recorder()
    attach_callbacks(private, [rec])
    chat_call(private.tracer)
    assert rec.names == ["on_llm_start", "on_llm_end"]
    handler.close()  # closes the private handler: its processors go, its providers shut down
    assert _span_processors(tp) == [] and _log_processors(lp) == []
    chat_call(private.tracer)
    assert rec.names == ["on_llm_start", "on_llm_end"]


def test_sdk_providers_need_no_private_pair() -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    handler = TelemetryHandler(tracer_provider=tp, logger_provider=lp)
    assert handler.in_process() is handler
    assert (handler.sdk_tracer_provider(), handler.sdk_logger_provider()) == (tp, lp)


def test_many_routers_for_one_provider_grow_nothing() -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    for _ in range(1000):
        ensure_router(TelemetryHandler(tracer_provider=tp, logger_provider=lp))
    assert len(_span_processors(tp)) == 1 and len(_log_processors(lp)) == 1


def test_validate_callbacks() -> None:
    class Duck:
        def on_llm_end(self, response: Any) -> None:
            pass

    class Foo:
        pass

    cbs = [Recorder(), Duck(), StreamingCallback()]
    assert validate_callbacks(cbs) == tuple(cbs)
    assert validate_callbacks(None) == ()
    assert validate_callbacks(iter(cbs)) == tuple(cbs)
    with pytest.raises(TypeError) as info:
        validate_callbacks([Recorder(), Duck(), Recorder(), Foo()])
    assert str(info.value) == (
        f"callback 3 ({Foo!r}) is not a BaseCallback and defines no on_* methods; "
        "subclass rlm_toolkit.callbacks.BaseCallback"
    )
    with pytest.raises(
        TypeError, match=r"callback 0 is the class Recorder, not an instance; pass Recorder\(\)"
    ):
        validate_callbacks([Recorder])
    with pytest.raises(
        TypeError, match=r"callbacks must be a list of callbacks, got .*Recorder.*; pass \[callback\]"
    ):
        validate_callbacks(Recorder())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback 0"):
        validate_callbacks([None])


def test_wants_tokens() -> None:
    class Tokens(BaseCallback):
        def on_token(self, token: str, **kwargs: Any) -> None:
            pass

    class AsyncTokens(AsyncBaseCallback):
        async def on_token(self, token: str, **kwargs: Any) -> None:
            pass

    class NoTokens(BaseCallback):
        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            pass

    class RichStream(StreamingCallback):
        def __init__(self) -> None:
            self.buffer = ""

        def on_token(self, token):  # type: ignore[no-untyped-def,override]
            self.buffer += token

    class DuckTokens:
        def on_token(self, token: str) -> None:
            pass

    per_instance = BaseCallback()
    per_instance.on_token = print  # type: ignore[method-assign]
    assert wants_tokens([per_instance]) is True
    assert wants_tokens([]) is False
    assert wants_tokens([NoTokens(), AsyncBaseCallback(), StreamingCallback(), MetricsCallback()]) is False
    assert wants_tokens([ConsoleCallback(), ConsoleCallback(verbose=True, show_cost=True)]) is False
    for yes in (
        Tokens(),
        AsyncTokens(),
        RichStream(),
        DuckTokens(),
        StreamingCallback(on_token=print),
        ConsoleCallback(show_tokens=True),
    ):
        assert wants_tokens([NoTokens(), yes]) is True, yes
