"""Implicit instrumentation (``ensure_instrumented``, what ``RLM`` uses) never blocks an explicit
``instrument(...)``: the explicit one replaces it, in whichever order they happen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit._instrument import ensure_instrumented
from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

from .conftest import Otel, instrument_with
from .test_lifecycle import patched

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    yield
    rlm_toolkit.uninstrument()
    assert set(patched().values()) == {0}


def test_explicit_after_implicit_replaces_it(otel: Otel, client: openai.OpenAI, server: Any) -> None:
    assert ensure_instrumented() is True
    assert OpenAIInstrumentor().is_implicit
    assert ensure_instrumented() is False  # idempotent: one wrapper per target
    assert set(patched().values()) == {1}
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert otel.spans() == []  # default (no-op) providers

    instrument_with(otel)
    assert not OpenAIInstrumentor().is_implicit
    assert set(patched().values()) == {1}  # replaced, not stacked
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert [s.name for s in otel.spans()] == ["chat gpt-4o"]


def test_implicit_after_explicit_changes_nothing(otel: Otel, client: openai.OpenAI, server: Any) -> None:
    instrument_with(otel)
    assert ensure_instrumented() is False
    assert not OpenAIInstrumentor().is_implicit
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert [s.name for s in otel.spans()] == ["chat gpt-4o"]


def test_explicit_is_never_replaced_by_another_explicit(otel: Otel) -> None:
    instrument_with(otel)
    OpenAIInstrumentor().instrument()  # "already instrumented": ignored, as BaseInstrumentor does
    assert set(patched().values()) == {1}
    assert not OpenAIInstrumentor().is_implicit


def test_uninstrument_clears_the_implicit_mark(otel: Otel, client: openai.OpenAI, server: Any) -> None:
    ensure_instrumented()
    rlm_toolkit.uninstrument()
    assert not OpenAIInstrumentor().is_implicit
    assert set(patched().values()) == {0}
    assert ensure_instrumented() is True  # and can instrument again
    assert OpenAIInstrumentor().is_implicit


def test_active_handler_follows_the_active_instrumentation(otel: Otel) -> None:
    from rlm_toolkit._instrument import active_handler

    assert active_handler() is None
    ensure_instrumented()
    implicit = active_handler()
    assert implicit is not None
    rlm_toolkit.instrument(tracer_provider=otel.tracer_provider, capture_content="span_only")
    explicit = active_handler()
    assert explicit is not None and explicit is not implicit and explicit.content.on_span
    rlm_toolkit.uninstrument()
    assert active_handler() is None
