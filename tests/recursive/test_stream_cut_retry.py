"""#22.9: a streamed model call cut mid-stream is retried (as the SDK retries the same fault on a
non-streamed call), bounded by the run's retry policy and time left; the cut attempt's span
fails visibly, the retry carries ``rlm.request.attempts``, the cut attempt's tokens still count.
Both SDKs, over real HTTP to the offline server's ``cut_stream`` fault."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from rlm_toolkit import RLM, RLMConfig
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.runtime import RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Otel

CONTEXT = "filler text. " * 200 + "The secret code is 4417. " + "more filler. " * 200
QUESTION = "What is the secret code?"
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


class Tokens(BaseCallback):
    """Wants tokens: every model call of the run is streamed."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def make(sdk: str, server: OpenAIServer, otel: Otel, retries: int = 2, **options: Any) -> RLM:
    common: dict[str, Any] = {
        "callbacks": [Tokens()],
        "tracer_provider": otel.tracer_provider,
        "logger_provider": otel.logger_provider,
        "meter_provider": otel.meter_provider,
        "api_key": API_KEY,
        "retry": RetryPolicy(max_retries=retries, initial_delay=0.01, max_delay=0.02),
        **options,
    }
    if sdk == "anthropic":
        return RLM.from_anthropic("claude-sonnet-4-5", base_url=server.url, **common)
    return RLM.from_openai("gpt-4o-mini", base_url=server.base_url, **common)


def chats(otel: Otel) -> list[ReadableSpan]:
    spans = [s for s in otel.finished() if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    return sorted(spans, key=lambda s: s.start_time or 0)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_root_stream_cut_mid_reply_is_retried_and_the_run_finishes(
    sdk: str, server: OpenAIServer, otel: Otel
) -> None:
    server.queue_fault("cut_stream", after_chunks=4, path=PATHS[sdk])
    result = make(sdk, server, otel).run(QUESTION, context=CONTEXT)
    assert result.status == "final" and "4417" in result.answer  # before: the run failed
    first, second = chats(otel)[:2]
    assert first.status.status_code.name == "ERROR"  # the cut attempt, visibly
    assert first.attributes["rlm.stream.end_reason"] == "error"
    assert second.status.status_code.name == "UNSET"
    assert second.attributes["rlm.request.attempts"] == 2
    assert first.parent is not None and second.parent is not None
    assert first.parent.span_id == second.parent.span_id
    calls = [r for r in server.requests if r.path == PATHS[sdk]]
    assert len(calls) == len(chats(otel))
    if sdk == "anthropic":
        # The cut attempt's input tokens (message_start) are part of the run's usage.
        spent = first.attributes["gen_ai.usage.input_tokens"]
        assert spent > 0
        assert result.usage.prompt_tokens == sum(
            s.attributes["gen_ai.usage.input_tokens"] for s in chats(otel)
        )
        assert result.cost == pytest.approx(sum(s.attributes["gen_ai.usage.cost"] for s in chats(otel)))
    else:
        # OpenAI reports usage only in the last chunk: the cut attempt's is unknown, and so
        # the run's total is not claimed as measured.
        assert "gen_ai.usage.input_tokens" not in first.attributes
        assert result.usage.known is False


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_retries_of_cut_streams_are_bounded_by_the_policy(sdk: str, server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("cut_stream", after_chunks=3, path=PATHS[sdk], times=5)
    result = make(sdk, server, otel, retries=1).run(QUESTION, context=CONTEXT, raise_on_error=False)
    assert result.status == "error"
    assert len([r for r in server.requests if r.path == PATHS[sdk]]) == 2  # one try + one retry
    assert [s.status.status_code.name for s in chats(otel)] == ["ERROR", "ERROR"]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_async_runs_retry_a_cut_stream_too(sdk: str, server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("cut_stream", after_chunks=4, path=PATHS[sdk])
    result = await make(sdk, server, otel).arun(QUESTION, context=CONTEXT)
    assert result.status == "final" and "4417" in result.answer
    assert chats(otel)[1].attributes["rlm.request.attempts"] == 2


def test_a_cut_stream_is_not_retried_past_the_time_left(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("cut_stream", after_chunks=3, path="/v1/messages", times=5)
    # A policy whose delay outlives the run's time: no retry is started past the deadline.
    rlm_slow = RLM.from_anthropic(
        "claude-sonnet-4-5",
        callbacks=[Tokens()],
        tracer_provider=otel.tracer_provider,
        base_url=server.url,
        api_key=API_KEY,
        retry=RetryPolicy(max_retries=5, initial_delay=5.0, max_delay=5.0, jitter=0.0),
        config=RLMConfig(max_seconds=1.5),
    )
    started = time.monotonic()
    result = rlm_slow.run(QUESTION, context=CONTEXT, raise_on_error=False)
    assert time.monotonic() - started < 3.0
    assert result.status in ("error", "timeout")
    assert len([r for r in server.requests if r.path == "/v1/messages"]) == 1


def test_an_anthropic_in_band_overloaded_error_is_retried(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("stream_error", after_chunks=3, path="/v1/messages")
    result = make("anthropic", server, otel).run(QUESTION, context=CONTEXT)
    assert result.status == "final"
    first = chats(otel)[0]
    assert first.status.status_code.name == "ERROR"
    assert chats(otel)[1].attributes["rlm.request.attempts"] == 2
