"""Everything the openai side has, for anthropic calls: metrics in both convention modes, the
content of thinking and tool_use blocks, callbacks (start/end, tokens, retry, error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import rlm_toolkit
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.testing import OpenAIServer

from ..conftest import Otel

MODEL = "claude-sonnet-4-5"
USER = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(params=["v1.41", "latest"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _instrument(otel: Otel, **kwargs: Any) -> None:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        **kwargs,
    )


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=1) as c:
        yield c


def test_metrics_in_both_modes(
    otel: Otel, mode: str, client: anthropic.Anthropic, server: OpenAIServer
) -> None:
    _instrument(otel, semconv=mode)
    try:
        message = client.messages.create(model=MODEL, max_tokens=60, messages=USER)  # type: ignore[arg-type]
        cache_write = (
            "gen_ai.usage.cache_write.input_tokens"
            if mode == "latest"
            else "gen_ai.usage.cache_creation.input_tokens"
        )
        assert dict(otel.span().attributes or {})[cache_write] == 0  # the mode's name for it
        with client.messages.stream(model=MODEL, max_tokens=60, messages=USER) as stream:  # type: ignore[arg-type]
            stream.get_final_message()
        otel.spans_exporter.clear()
        server.queue_fault("bad_request")
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model=MODEL, max_tokens=60, messages=USER)  # type: ignore[arg-type]
    finally:
        rlm_toolkit.uninstrument()
    latest = mode == "latest"
    spans = otel.spans()
    assert len(spans) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    failed = spans[0]
    assert [r.event_name for r in otel.logs()] == (["gen_ai.client.operation.exception"] if latest else [])
    assert failed.instrumentation_scope.schema_url.endswith("1.41.0") is not latest  # type: ignore[union-attr]
    metrics = otel.metrics()
    inp, out = message.usage.input_tokens, message.usage.output_tokens
    if mode == "latest":
        duration = metrics["gen_ai.client.inference.duration"]
        usage_in = metrics["gen_ai.client.inference.usage.input_tokens"]
        usage_out = metrics["gen_ai.client.inference.usage.output_tokens"]
        # the failed call records 0 (no usage arrived), in its own series (with error.type)
        assert sorted(p.value for p in usage_in) == [0, 2 * inp]
        assert sorted(p.value for p in usage_out) == [0, 2 * out]
        assert {dict(p.attributes)["gen_ai.token.modality"] for p in usage_in} == {"unknown"}
        assert "gen_ai.client.inference.time_to_first_chunk" in metrics
    else:
        duration = metrics["gen_ai.client.operation.duration"]
        usage = {dict(p.attributes)["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]}
        assert usage == {"input": 2 * inp, "output": 2 * out}
        assert "gen_ai.client.operation.time_to_first_chunk" in metrics
    [point] = [p for p in duration if "error.type" not in dict(p.attributes)]
    [error] = [p for p in duration if "error.type" in dict(p.attributes)]
    assert (point.count, error.count, dict(error.attributes)["error.type"]) == (2, 1, "BadRequestError")
    assert dict(point.attributes)["gen_ai.provider.name"] == "anthropic"
    assert dict(point.attributes)["gen_ai.operation.name"] == "chat"


def test_reasoning_level_in_both_modes(otel: Otel, mode: str, client: anthropic.Anthropic) -> None:
    _instrument(otel, semconv=mode)
    try:
        client.messages.create(
            model=MODEL,
            max_tokens=60,
            messages=USER,  # type: ignore[arg-type]
            extra_body={"output_config": {"effort": "low"}},
        )
    finally:
        rlm_toolkit.uninstrument()
    key = "gen_ai.request.reasoning.level" if mode == "latest" else "rlm.request.reasoning.effort"
    assert dict(otel.span().attributes or {})[key] == "low"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_thinking_and_tool_use_content(
    otel: Otel, server: OpenAIServer, client: anthropic.Anthropic, stream: bool
) -> None:
    server.queue_reply("Let me look.", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}, "description": "Weather."}]
    _instrument(otel, capture_content=True)
    kw: Any = {
        "model": MODEL,
        "max_tokens": 2000,
        "messages": USER,
        "tools": tools,
        "system": "Be brief.",
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    try:
        if stream:
            with client.messages.stream(**kw) as s:
                message = s.get_final_message()
        else:
            message = client.messages.create(**kw)
    finally:
        rlm_toolkit.uninstrument()
    a = dict(otel.span().attributes or {})
    [out] = json.loads(str(a["gen_ai.output.messages"]))
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert out["parts"] == [
        {"type": "reasoning", "content": thinking.thinking},
        {"type": "text", "content": "Let me look."},
        {
            "type": "tool_call",
            "id": message.content[2].id,
            "name": "get_weather",
            "arguments": {"city": "Paris"},
        },  # type: ignore[union-attr]
    ]
    assert out["finish_reason"] == "tool_call" and a["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert json.loads(str(a["gen_ai.system_instructions"])) == [{"type": "text", "content": "Be brief."}]
    [tool] = json.loads(str(a["gen_ai.tool.definitions"]))
    assert (tool["name"], tool["parameters"]) == ("get_weather", {"type": "object"})
    assert (a["rlm.anthropic.thinking.type"], a["rlm.anthropic.thinking.budget_tokens"]) == ("enabled", 1024)
    assert a["gen_ai.usage.reasoning.output_tokens"] == message.usage.output_tokens_details.thinking_tokens  # type: ignore[union-attr]


class Recorder(BaseCallback):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        self.seen.append(("start", prompt))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(("end", (response.text, response.usage.output_tokens)))

    def on_token(self, token: str, **kwargs: Any) -> None:
        self.seen.append(("token", token))

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        self.seen.append(("retry", (attempt, type(error).__name__)))

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(("error", type(error).__name__))


def test_callbacks(otel: Otel, server: OpenAIServer, client: anthropic.Anthropic) -> None:
    recorder = Recorder()
    _instrument(otel, callbacks=[recorder])
    try:
        server.queue_fault("unavailable", retry_after=0.01)
        with client.messages.stream(model=MODEL, max_tokens=60, messages=USER) as stream:  # type: ignore[arg-type]
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        server.queue_fault("bad_request")
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model=MODEL, max_tokens=60, messages=USER)  # type: ignore[arg-type]
    finally:
        rlm_toolkit.uninstrument()
    tokens = [value for kind, value in recorder.seen if kind == "token"]
    assert "".join(tokens) == text and len(tokens) > 1
    kinds = [kind for kind, _ in recorder.seen if kind != "token"]
    assert kinds == ["start", "retry", "end", "start", "error"]
    assert recorder.seen[0] == ("start", USER[0]["content"])
    assert ("retry", (1, "OverloadedError")) in recorder.seen
    assert ("end", (text, final.usage.output_tokens)) in recorder.seen
    assert recorder.seen[-1] == ("error", "BadRequestError")
