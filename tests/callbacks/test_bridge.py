"""ensure_pipeline / validate_callbacks / wants_tokens / set_global_callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
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
    _bridge,
)
from rlm_toolkit.callbacks._bridge import (
    ensure_pipeline,
    set_global_callbacks,
    validate_callbacks,
    wants_tokens,
)
from rlm_toolkit.genai._context import Scope, consumers, use_scope

from .conftest import Recorder, chat_call


def _span_processors(tp: TracerProvider) -> list[Any]:
    return [p for p in tp._active_span_processor._span_processors if isinstance(p, CallbackSpanProcessor)]


def _log_processors(lp: LoggerProvider) -> list[Any]:
    return [
        p
        for p in lp._multi_log_record_processor._log_record_processors
        if isinstance(p, CallbackLogRecordProcessor)
    ]


def test_given_sdk_providers_get_one_processor_each_once() -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    consumers.active = False
    first = ensure_pipeline(tp, lp)
    second = ensure_pipeline(tracer_provider=tp, logger_provider=lp)
    assert (first.tracer_provider, first.logger_provider) == (tp, lp)
    assert first == second and first.tracer is second.tracer and first.logger is second.logger
    assert len(_span_processors(tp)) == 1
    assert len(_log_processors(lp)) == 1
    assert consumers.active is True
    cb = Recorder()
    with use_scope(Scope(tracer=first.tracer, logger=first.logger, callbacks=(cb,))):
        chat_call(first.tracer)
    assert cb.names == ["on_llm_start", "on_llm_end"]


def test_without_sdk_providers_a_private_pair_is_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: NoOpTracerProvider())
    monkeypatch.setattr(_bridge, "get_logger_provider", lambda: NoOpLoggerProvider())
    a = ensure_pipeline()
    b = ensure_pipeline(NoOpTracerProvider(), "not a provider")
    assert isinstance(a.tracer_provider, TracerProvider) and isinstance(a.logger_provider, LoggerProvider)
    assert (a.tracer_provider, a.logger_provider) == (b.tracer_provider, b.logger_provider)
    assert a.tracer_provider is _bridge._private_pair()[0]
    assert len(_span_processors(a.tracer_provider)) == 1
    assert a.tracer.start_span("x").is_recording()  # sampled, so callbacks fire


def test_global_sdk_providers_are_preferred_over_the_private_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: tp)
    monkeypatch.setattr(_bridge, "get_logger_provider", lambda: lp)
    pipeline = ensure_pipeline(None, None)
    assert (pipeline.tracer_provider, pipeline.logger_provider) == (tp, lp)
    assert len(_span_processors(tp)) == 1 and len(_log_processors(lp)) == 1


def test_many_pipelines_for_one_provider_grow_nothing() -> None:
    tp, lp = TracerProvider(), LoggerProvider()
    before = (len(_bridge._span_side), len(_bridge._log_side))
    for _ in range(1000):
        ensure_pipeline(tp, lp)
    assert (len(_bridge._span_side), len(_bridge._log_side)) == (before[0] + 1, before[1] + 1)
    assert len(_span_processors(tp)) == 1


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


def test_set_global_callbacks_sets_the_token_flag() -> None:
    streaming = StreamingCallback(on_token=print)
    assert set_global_callbacks([streaming]) == (streaming,)
    assert consumers.global_wants_tokens is True
    assert _bridge.global_callbacks() == (streaming,)
    set_global_callbacks([MetricsCallback()])
    assert consumers.global_wants_tokens is False
    set_global_callbacks(())
    assert _bridge.global_callbacks() == ()
    with pytest.raises(TypeError, match="callback 0"):
        set_global_callbacks([object()])
