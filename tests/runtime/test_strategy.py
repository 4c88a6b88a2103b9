"""The public surface of ``rlm_toolkit.runtime`` and the ``Strategy`` seam it documents."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import format_span_id

import rlm_toolkit.runtime as runtime
from rlm_toolkit.runtime import RLM
from rlm_toolkit.runtime._strategy import Completion, LLMRequest, Plan
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder


def test_public_names_are_what_a_user_needs() -> None:
    assert runtime.__all__ == [
        "RLM",
        "RLMConfig",
        "RLMCredentialsError",
        "RLMResult",
        "RLMStream",
        "RetryPolicy",
        "Strategy",
        "Usage",
        "end_open_runs",
    ]
    for private in ("Completion", "DirectStrategy", "LLMRequest"):
        assert not hasattr(runtime, private), private


class AskTwice:
    """A two-call strategy: answer, then ask the model to shorten its own answer."""

    def messages(self, prompt: str, context: str | None) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    def plan(self, prompt: str, context: str | None) -> Plan:
        first: Completion = yield LLMRequest(self.messages(prompt, context))
        second: Completion = yield LLMRequest([{"role": "user", "content": f"Shorten: {first.content}"}])
        return f"{second.content} ({len(first.content)} chars before)"


def make_rlm(server: OpenAIServer, telemetry: Telemetry, recorder: Recorder) -> RLM:
    return RLM.from_openai(
        "gpt-4o",
        callbacks=[recorder],
        strategy=AskTwice(),
        api_key=API_KEY,
        base_url=server.base_url,
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
    )


def check_two_call_run(server: OpenAIServer, telemetry: Telemetry, recorder: Recorder, result: Any) -> None:
    first, second = (r.body["messages"] for r in server.requests)
    assert first == [{"role": "user", "content": "Hello!"}]
    assert second[0]["content"].startswith("Shorten: ")
    assert result.iterations == 2
    llm_1, llm_2, run = telemetry.spans.get_finished_spans()
    assert [s.name for s in (llm_1, llm_2, run)] == ["chat gpt-4o", "chat gpt-4o", "invoke_agent rlm"]
    assert {s.parent.span_id for s in (llm_1, llm_2) if s.parent} == {run.context.span_id}
    assert run.attributes is not None and run.attributes["rlm.run.iterations"] == 2
    tokens = [s.attributes["gen_ai.usage.input_tokens"] for s in (llm_1, llm_2) if s.attributes]
    assert result.usage.prompt_tokens == sum(tokens) == run.attributes["gen_ai.usage.input_tokens"]
    assert result.answer.endswith(" chars before)")
    run_id = format_span_id(run.context.span_id)
    assert [(n, kw["parent_run_id"] == run_id) for n, kw in recorder.events] == [
        ("on_run_start", False),
        ("on_llm_start", True),
        ("on_llm_end", True),
        ("on_llm_start", True),
        ("on_llm_end", True),
        ("on_run_end", False),
    ]


def test_a_strategy_drives_several_calls_in_one_run(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    result = make_rlm(server, telemetry, recorder).run("Hello!")
    check_two_call_run(server, telemetry, recorder, result)


async def test_the_same_strategy_runs_async(server: OpenAIServer, telemetry: Telemetry) -> None:
    recorder = Recorder()
    result = await make_rlm(server, telemetry, recorder).arun("Hello!")
    check_two_call_run(server, telemetry, recorder, result)
