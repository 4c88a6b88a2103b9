"""The run span's content capture has one source of truth: the active instrumentation's mode.

A code-level ``instrument(capture_content=...)`` wins over the environment for the run span
exactly as it does for the LLM spans; the environment is read only when ``openai`` is not
instrumented at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
from rlm_toolkit.runtime import RLM
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder

SECRET = "SECRET PROMPT TEXT"
ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., None]]:
    """Explicit ``rlm_toolkit.instrument(...)`` to the test's providers, removed afterwards."""
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry and not instrumentor.is_implicit:
        instrumentor.uninstrument()  # an explicit leftover would make instrument() a no-op

    def do(**kwargs: Any) -> None:
        rlm_toolkit.instrument(
            tracer_provider=telemetry.tracer_provider, logger_provider=telemetry.logger_provider, **kwargs
        )

    yield do
    rlm_toolkit.uninstrument()


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as c:
        yield c


def _exported(telemetry: Telemetry) -> str:
    spans = [repr(dict(s.attributes or {})) for s in telemetry.spans.get_finished_spans()]
    logs = [
        repr(r.log_record.body) + repr(dict(r.log_record.attributes or {}))
        for r in telemetry.logs.get_finished_logs()
    ]
    return "\n".join(spans + logs)


def _names(telemetry: Telemetry) -> list[str]:
    return [s.name for s in telemetry.spans.get_finished_spans()]


async def _run_all_ways(rlm: RLM) -> list[str]:
    answers = [rlm.run(SECRET).answer, (await rlm.arun(SECRET)).answer]
    with rlm.stream(SECRET) as tokens:
        answers.append("".join(tokens))
    return answers


@pytest.mark.parametrize("with_callbacks", [False, True], ids=["no-scope", "scoped-callbacks"])
async def test_code_level_opt_out_beats_the_environment_on_the_run_span(
    instrument: Callable[..., None],
    client: openai.OpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
    with_callbacks: bool,
) -> None:
    monkeypatch.setenv(ENV, "true")
    instrument(capture_content=False)
    recorder = Recorder()
    scoped: dict[str, Any] = (
        {
            "callbacks": [recorder],
            "tracer_provider": telemetry.tracer_provider,
            "logger_provider": telemetry.logger_provider,
        }
        if with_callbacks
        else {}
    )
    answers = await _run_all_ways(RLM(client, model="gpt-4o", **scoped))
    assert _names(telemetry) == ["chat gpt-4o", "invoke_agent rlm"] * 3
    exported = _exported(telemetry)
    assert SECRET not in exported
    assert all(answer and answer not in exported for answer in answers)
    assert "gen_ai.input.messages" not in exported and "gen_ai.output.messages" not in exported
    if with_callbacks:  # callbacks still see the content in process
        assert [e["prompt"] for e in recorder.of("on_run_start")] == [SECRET] * 3


async def test_code_level_opt_in_captures_on_the_run_span_without_the_environment(
    instrument: Callable[..., None],
    client: openai.OpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    instrument(capture_content=True)
    answers = await _run_all_ways(RLM(client, model="gpt-4o"))
    runs = [s for s in telemetry.spans.get_finished_spans() if s.name == "invoke_agent rlm"]
    llms = [s for s in telemetry.spans.get_finished_spans() if s.name == "chat gpt-4o"]
    assert len(runs) == len(llms) == 3
    for run, answer in zip(runs, answers, strict=True):
        attrs = dict(run.attributes or {})
        assert json.loads(str(attrs["gen_ai.input.messages"])) == [
            {"role": "user", "parts": [{"type": "text", "content": SECRET}]}
        ]
        assert json.loads(str(attrs["gen_ai.output.messages"])) == [
            {"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}
        ]
    for llm in llms:  # the same decision as the LLM spans'
        assert SECRET in str(dict(llm.attributes or {})["gen_ai.input.messages"])


@pytest.mark.parametrize(
    ("env", "code", "on_span"),
    [
        ("span_only", None, True),  # instrument() without capture_content reads the environment
        ("span_only", "event_only", False),
        ("false", "span_and_event", True),
        ("true", "no_content", False),
    ],
)
def test_run_span_follows_the_instrumentations_mode(
    instrument: Callable[..., None],
    client: openai.OpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    code: str | None,
    on_span: bool,
) -> None:
    monkeypatch.setenv(ENV, env)
    instrument(capture_content=code)
    RLM(client, model="gpt-4o").run(SECRET)
    llm, run = telemetry.spans.get_finished_spans()
    for span in (llm, run):
        assert ("gen_ai.input.messages" in dict(span.attributes or {})) is on_span, span.name
        assert ("gen_ai.output.messages" in dict(span.attributes or {})) is on_span, span.name


def test_without_any_instrumentation_the_environment_decides(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    rlm = RLM(client, model="gpt-4o", tracer_provider=telemetry.tracer_provider)
    OpenAIInstrumentor().uninstrument()
    monkeypatch.setenv(ENV, "span_only")
    rlm.run("captured")
    monkeypatch.setenv(ENV, "event_only")
    rlm.run("not captured")
    # The runtime reports its own model calls through the run's handler: LLM spans without
    # any process-wide instrumentation, and the SDK stays unpatched.
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    chat_1, captured, chat_2, not_captured = telemetry.spans.get_finished_spans()
    assert (captured.name, not_captured.name) == ("invoke_agent rlm", "invoke_agent rlm")
    assert (chat_1.name, chat_2.name) == ("chat gpt-4o", "chat gpt-4o")
    assert "gen_ai.input.messages" in dict(chat_1.attributes or {})
    assert "gen_ai.input.messages" not in dict(chat_2.attributes or {})
    assert json.loads(str(dict(captured.attributes or {})["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "captured"}]}
    ]
    assert "gen_ai.input.messages" not in dict(not_captured.attributes or {})
