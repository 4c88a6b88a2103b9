"""RLM.from_anthropic end to end: the real ``anthropic`` SDK over real HTTP to the offline server
(which speaks POST /v1/messages and plays the recursive run), sync, async, stream(), budgets,
retries, cancel, and runs that mix providers (#23.5)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from rlm_toolkit import RLM, RLMConfig, RLMCredentialsError
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.pricing import estimate_cost
from rlm_toolkit.runtime import RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Otel, children_of_this_process, repl

ROOT = "claude-sonnet-4-5"
SUB = "claude-haiku-4-5"
CONTEXT = "filler text. " * 200 + "The secret code is 4417. " + "more filler. " * 200
QUESTION = "What is the secret code?"
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)


class Recorder(BaseCallback):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.retries: list[int] = []

    def on_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        self.retries.append(attempt)


def claude(server: OpenAIServer, otel: Otel, *callbacks: Any, **options: Any) -> RLM:
    options.setdefault("retry", FAST)
    return RLM.from_anthropic(
        options.pop("model", ROOT),
        callbacks=list(callbacks),
        tracer_provider=otel.tracer_provider,
        logger_provider=otel.logger_provider,
        meter_provider=otel.meter_provider,
        api_key=API_KEY,
        base_url=server.url,
        **options,
    )


def chats(otel: Otel) -> list[ReadableSpan]:
    return [s for s in otel.finished() if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]


def messages_requests(server: OpenAIServer) -> list[Any]:
    return [r for r in server.requests if r.path == "/v1/messages"]


def _costs_add_up(result: Any, spans: list[ReadableSpan]) -> None:
    costs = [s.attributes["gen_ai.usage.cost"] for s in spans]
    assert result.cost == pytest.approx(sum(costs))
    for span in spans:
        a = span.attributes
        expected = estimate_cost(
            a["gen_ai.response.model"],
            input_tokens=a["gen_ai.usage.input_tokens"],
            output_tokens=a["gen_ai.usage.output_tokens"],
            cached_input_tokens=a.get("gen_ai.usage.cache_read.input_tokens", 0),
            cache_write_input_tokens=a.get("gen_ai.usage.cache_creation.input_tokens", 0),
            provider=a["gen_ai.provider.name"],
        )
        assert a["gen_ai.usage.cost"] == pytest.approx(expected)


def test_a_recursive_run_on_claude_one_span_per_messages_request(server: OpenAIServer, otel: Otel) -> None:
    result = claude(server, otel, sub_model=SUB).run(QUESTION, context=CONTEXT)
    assert result.status == "final"
    assert "4417" in result.answer
    spans = chats(otel)
    requests = messages_requests(server)
    assert len(spans) == len(requests) >= 3  # exactly one span per API call
    assert not [r for r in server.requests if r.path != "/v1/messages"]
    for span in spans:
        a = span.attributes or {}
        assert span.name == f"chat {a['gen_ai.request.model']}"
        assert span.kind.name == "CLIENT"
        assert a["gen_ai.provider.name"] == "anthropic"
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert a["gen_ai.request.max_tokens"] == 4096
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name != "com.anthropic.sdk.python"
    assert {s.attributes["gen_ai.request.model"] for s in spans} == {ROOT, SUB}
    # The Messages API wants system apart and turns alternating from user.
    for request in requests:
        roles = [m["role"] for m in request.body["messages"]]
        assert roles[0] == "user" and all(a != b for a, b in itertools.pairwise(roles))
    assert requests[0].body["system"].startswith("You are a recursive language model")
    assert result.usage.prompt_tokens == sum(s.attributes["gen_ai.usage.input_tokens"] for s in spans)
    _costs_add_up(result, spans)
    assert result.cost is not None and result.cost > 0


async def test_arun_and_a_direct_call(server: OpenAIServer, otel: Otel) -> None:
    rlm = claude(server, otel, sub_model=SUB)
    result = await rlm.arun(QUESTION, context=CONTEXT)
    assert result.status == "final" and "4417" in result.answer
    direct = await rlm.arun("What is 2+2?")
    assert direct.answer.startswith("You said: What is 2+2?")
    assert direct.usage.known and direct.usage.prompt_tokens > 0
    assert direct.finish_reason == "stop"
    assert len(chats(otel)) == len(messages_requests(server))
    _costs_add_up(direct, chats(otel)[-1:])


def test_stream_delivers_the_tokens_and_ends_one_span(server: OpenAIServer, otel: Otel) -> None:
    recorder = Recorder()
    with claude(server, otel, recorder).stream("Say hello") as stream:
        text = "".join(stream)
    assert text.startswith("You said: Say hello")
    assert "".join(recorder.tokens) == text
    assert stream.result is not None and stream.result.answer == text
    assert stream.result.usage.known and stream.result.cost is not None
    (span,) = chats(otel)
    assert span.attributes["rlm.stream.end_reason"] == "completed"
    assert messages_requests(server)[0].body["stream"] is True


def test_a_stream_left_early_ends_its_span_closed(server: OpenAIServer, otel: Otel) -> None:
    with claude(server, otel).stream("Say hello at some length please") as stream:
        next(stream)
    (span,) = chats(otel)
    assert span.attributes["rlm.stream.end_reason"] == "closed"


def test_token_callbacks_stream_the_recursive_calls(server: OpenAIServer, otel: Otel) -> None:
    recorder = Recorder()
    result = claude(server, otel, recorder, sub_model=SUB).run(QUESTION, context=CONTEXT)
    assert result.status == "final"
    assert recorder.tokens  # the root and sub-calls were streamed
    assert all(r.body.get("stream") is True for r in messages_requests(server))
    assert {s.attributes["rlm.stream.end_reason"] for s in chats(otel)} == {"completed"}


def test_the_cost_budget_stops_a_claude_run(server: OpenAIServer, otel: Otel) -> None:
    rlm = claude(server, otel, config=RLMConfig(max_cost_usd=0.004, sub_model=SUB))
    result = rlm.run(QUESTION, context=CONTEXT)
    assert result.status == "budget"
    assert result.cost is not None and result.cost >= 0.004
    _costs_add_up(result, chats(otel))


def test_retries_go_through_the_sdk_loop_with_the_run_policy(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("rate_limit", times=2, path="/v1/messages")
    recorder = Recorder()
    result = claude(server, otel, recorder).run("What is 2+2?")
    assert result.answer.startswith("You said")
    (span,) = chats(otel)
    assert span.attributes["rlm.request.attempts"] == 3
    retries = [e for e in span.events if e.name == "rlm.retry"]
    assert [e.attributes["rlm.retry.attempt"] for e in retries] == [1, 2]
    # As for the app's own instrumented calls (the same wrapper and retry hooks report both).
    assert {(e.attributes["error.type"], e.attributes["http.response.status_code"]) for e in retries} == {
        ("RateLimitError", 429)
    }
    assert recorder.retries == [1, 2]
    assert len(messages_requests(server)) == 3


def test_an_api_error_fails_the_span_with_the_class_and_the_envelope_type(
    server: OpenAIServer, otel: Otel
) -> None:
    server.queue_fault("not_found", path="/v1/messages")
    with pytest.raises(anthropic.NotFoundError):
        claude(server, otel).run("hello")
    (span,) = chats(otel)
    assert span.status.status_code.name == "ERROR"
    # As for the app's own instrumented calls: the SDK's class, the envelope type beside it.
    assert span.attributes["error.type"] == "NotFoundError"
    assert span.attributes["rlm.error.provider_type"] == "not_found_error"


async def test_cancelling_a_claude_arun_stops_at_once(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl('print(llm_query("slow?"))'), to="root")
    server.queue_fault("slow", delay=8.0, path="/v1/messages", times=3)
    rlm = claude(server, otel, sub_model=SUB)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(rlm.arun("q", context="ctx"), 1.0)
    assert time.monotonic() - started < 4.0
    assert children_of_this_process() == []


def test_root_on_claude_sub_calls_on_an_openai_compatible_server(server: OpenAIServer, otel: Otel) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY) as sub_client:
        result = claude(server, otel, sub_model="gpt-4o-mini", sub_client=sub_client).run(
            QUESTION, context=CONTEXT
        )
    assert result.status == "final" and "4417" in result.answer
    spans = chats(otel)
    by_provider = {s.attributes["gen_ai.provider.name"]: s for s in spans}
    assert set(by_provider) == {"anthropic", "openai"}
    assert {
        s.attributes["gen_ai.request.model"]
        for s in spans
        if s.attributes["gen_ai.provider.name"] == "openai"
    } == {"gpt-4o-mini"}
    assert len({s.context.trace_id for s in otel.finished()}) == 1  # one tree
    paths = [r.path for r in server.requests]
    assert len(spans) == len(paths)
    assert paths.count("/v1/chat/completions") == len(
        [s for s in spans if s.attributes["gen_ai.provider.name"] == "openai"]
    )
    _costs_add_up(result, spans)
    assert set(result.by_model) == {ROOT, "gpt-4o-mini"}


async def test_arun_derives_the_async_twin_of_an_openai_sub_client(server: OpenAIServer, otel: Otel) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY) as sub_client:
        rlm = claude(server, otel, sub_model="gpt-4o-mini", sub_client=sub_client)
        result = await rlm.arun(QUESTION, context=CONTEXT)
    assert result.status == "final" and "4417" in result.answer
    assert {s.attributes["gen_ai.provider.name"] for s in chats(otel)} == {"anthropic", "openai"}


async def test_arun_without_an_async_twin_for_the_sub_client_says_what_to_pass(
    server: OpenAIServer, otel: Otel
) -> None:
    with anthropic.Anthropic(base_url=server.url, api_key=API_KEY) as sub_client:
        rlm = claude(server, otel, sub_model=SUB, sub_client=sub_client)
        with pytest.raises(TypeError, match="pass sub_async_client="):
            await rlm.arun(QUESTION, context=CONTEXT)


async def test_root_on_openai_sub_calls_on_claude_async(server: OpenAIServer, otel: Otel) -> None:
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY) as sub:
        rlm = RLM.from_openai(
            "gpt-4o-mini",
            tracer_provider=otel.tracer_provider,
            logger_provider=otel.logger_provider,
            meter_provider=otel.meter_provider,
            api_key=API_KEY,
            base_url=server.base_url,
            sub_model=SUB,
            sub_async_client=sub,
        )
        result = await rlm.arun(QUESTION, context=CONTEXT)
    assert result.status == "final" and "4417" in result.answer
    providers = [s.attributes["gen_ai.provider.name"] for s in chats(otel)]
    assert "anthropic" in providers and "openai" in providers
    _costs_add_up(result, chats(otel))


def test_a_users_anthropic_client_with_its_tracing_on_still_gives_one_span(
    server: OpenAIServer, otel: Otel
) -> None:
    # The SDK would trace this client itself (its option names our provider): the run's calls
    # go through a copy with the SDK's tracing off.
    client = anthropic.Anthropic(
        base_url=server.url, api_key=API_KEY, open_telemetry={"tracer_provider": otel.tracer_provider}
    )
    rlm = RLM(client=client, model=ROOT, tracer_provider=otel.tracer_provider)
    rlm.run("hello")
    scopes = [s.instrumentation_scope.name for s in otel.finished() if s.instrumentation_scope is not None]
    assert "com.anthropic.sdk.python" not in scopes
    assert len(chats(otel)) == 1
    client.messages.create(model=ROOT, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    scopes = [s.instrumentation_scope.name for s in otel.finished() if s.instrumentation_scope is not None]
    assert scopes.count("com.anthropic.sdk.python") == 1  # the app's own call: left as it was
    client.close()


_GLOBAL_PROVIDER = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rlm_toolkit import RLM
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
rlm = RLM.from_anthropic("claude-sonnet-4-5", base_url=sys.argv[1], api_key="sk-test")
rlm.run("hello")
print(json.dumps([[s.name, s.instrumentation_scope.name] for s in exporter.get_finished_spans()]))
"""


def test_with_a_global_tracer_provider_the_sdk_adds_no_second_span(server: OpenAIServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    out = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDER, server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    spans = json.loads(out.stdout.splitlines()[-1])
    assert [name for name, _ in spans] == ["chat claude-sonnet-4-5", "invoke_agent rlm"]
    assert "com.anthropic.sdk.python" not in {scope for _, scope in spans}


_INSTRUMENTED_APP = """
import asyncio, collections, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import rlm_toolkit
from rlm_toolkit import RLM
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
rlm_toolkit.instrument(tracer_provider=provider)  # the app's own anthropic calls are traced too
rlm = RLM.from_anthropic(
    "claude-sonnet-4-5", sub_model="claude-haiku-4-5", base_url=sys.argv[1], api_key="sk-test"
)
ctx = "filler. The secret code is 4417. more filler."
if sys.argv[2] == "sync":
    result = rlm.run("What is the secret code?", context=ctx)
else:
    result = asyncio.run(rlm.arun("What is the secret code?", context=ctx))
assert "4417" in str(result.answer), result
names = collections.Counter(s.name for s in exporter.get_finished_spans())
print(json.dumps(names))
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_run_under_the_apps_instrument_has_one_span_per_messages_request(
    server: OpenAIServer, mode: str
) -> None:
    # Before: with instrument() on, the process-wide wrapper did not see the run's call and
    # made a second chat span for every Messages request (14 spans for 7 requests).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    before = len(server.requests)
    out = subprocess.run(
        [sys.executable, "-c", _INSTRUMENTED_APP, server.url, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    names = json.loads(out.stdout.splitlines()[-1])
    requests = len(server.requests) - before
    chats = sum(n for name, n in names.items() if name.startswith("chat "))
    assert requests >= 3 and names.get("chat claude-haiku-4-5", 0) >= 1  # root turns and a sub-call
    assert chats == requests


def test_bad_options_fail_in_one_line_before_anything_starts() -> None:
    with pytest.raises(TypeError, match=r"unexpected option 'organization'.*valid options"):
        RLM.from_anthropic(ROOT, organization="x")
    with pytest.raises(ValueError, match="max_tokens"):
        RLM.from_anthropic(ROOT, max_tokens=0)
    with pytest.raises(TypeError, match="sub_model"):
        RLM.from_anthropic(ROOT, sub_client=openai.OpenAI(api_key="x"))


@pytest.mark.parametrize("entry", ["run", "arun", "stream", "recursive"])
@pytest.mark.parametrize("build", ["no_options", "base_url_only"])
def test_no_anthropic_key_is_one_clear_error_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, otel: Otel, server: OpenAIServer, entry: str, build: str
) -> None:
    # Before: the SDK's TypeError "Could not resolve authentication method..." from inside the
    # first call, with the run's root span already failed.
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no profile for the SDK to discover either
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    providers = {"tracer_provider": otel.tracer_provider, "logger_provider": otel.logger_provider}
    options = {"base_url": server.url} if build == "base_url_only" else {}
    rlm = RLM.from_anthropic(ROOT, **providers, **options)
    with pytest.raises(RLMCredentialsError) as caught:
        if entry == "run":
            rlm.run("hi")
        elif entry == "arun":
            asyncio.run(rlm.arun("hi"))
        elif entry == "stream":
            rlm.stream("hi")
        else:
            rlm.run("hi", context="some context")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no Anthropic API key: set ANTHROPIC_API_KEY or pass api_key=")
    assert "auth_token" in message and "base_url=" in message and "python -m rlm_toolkit.testing" in message
    assert otel.finished() == []  # nothing started: no span, no request, no sandbox
    assert server.requests == []
    assert children_of_this_process() == []


def test_an_auth_token_or_an_auth_header_is_enough(
    monkeypatch: pytest.MonkeyPatch, otel: Otel, server: OpenAIServer
) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for options in ({"auth_token": "tok"}, {"default_headers": {"X-Api-Key": "k"}}):
        rlm = RLM.from_anthropic(ROOT, tracer_provider=otel.tracer_provider, base_url=server.url, **options)
        assert rlm.run("hi").status == "final"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert (
        RLM.from_anthropic(ROOT, tracer_provider=otel.tracer_provider, base_url=server.url).run("hi").status
        == "final"
    )
