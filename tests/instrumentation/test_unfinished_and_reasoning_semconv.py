"""Two names checked against the GenAI conventions' registry (``model/gen-ai/registry.yaml`` @
``e9de14bafd97``, open-telemetry/semantic-conventions-genai), through the real SDK over HTTP
to the offline server, in both convention modes:

* ``gen_ai.response.finish_reasons``: "If a finish reason was expected but not received, for
  example because generation failed, was cancelled, or a stream ended before the final event,
  instrumentations SHOULD report ``error`` for that position" -- latest mode. v1.41 says only
  "corresponding to each generation received", so the default mode leaves them out.
* ``gen_ai.request.reasoning.level``: "the exact string value sent to the provider" -- the
  Responses API's ``reasoning.effort`` and Chat Completions' ``reasoning_effort`` in latest
  mode; ``rlm.request.reasoning.effort`` in v1.41 mode (that version has no such attribute).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Count to five"}]
FINISH = "gen_ai.response.finish_reasons"
LEVEL = {"latest": "gen_ai.request.reasoning.level", "v1.41": "rlm.request.reasoning.effort"}


@pytest.fixture(params=["v1.41", "latest"])
def mode(request: pytest.FixtureRequest, otel: Otel) -> Iterator[str]:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        semconv=request.param,
    )
    try:
        yield str(request.param)
    finally:
        rlm_toolkit.uninstrument()


@pytest.fixture
def sdk(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0)
    yield client
    client.close()


def _attrs(otel: Otel) -> dict[str, Any]:
    return dict(otel.span().attributes or {})


def _unfinished(mode: str, positions: int) -> tuple[str, ...] | None:
    return ("error",) * positions if mode == "latest" else None


def test_a_stream_closed_early_reports_error_for_its_choice(
    mode: str, otel: Otel, sdk: openai.OpenAI
) -> None:
    stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    attrs = _attrs(otel)
    assert attrs["rlm.stream.end_reason"] == "closed"
    assert attrs.get(FINISH) == _unfinished(mode, 1)


def test_break_in_a_with_block_reports_error_for_every_requested_choice(
    mode: str, otel: Otel, sdk: openai.OpenAI
) -> None:
    with sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2) as stream:
        for _ in stream:
            break
    assert _attrs(otel).get(FINISH) == _unfinished(mode, 2)


def test_the_apps_exception_inside_the_stream_reports_error(
    mode: str, otel: Otel, sdk: openai.OpenAI
) -> None:
    # The app's own exception while it reads the stream, inside the stream's ``with``.
    with (
        pytest.raises(KeyError),
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream,
    ):
        for _ in stream:
            raise KeyError("the app's bug")
    attrs = _attrs(otel)
    assert attrs["rlm.stream.end_reason"] == "error" and attrs["error.type"] == "KeyError"
    assert attrs.get(FINISH) == _unfinished(mode, 1)


def test_a_stream_cut_by_the_server_reports_error(
    mode: str, otel: Otel, sdk: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_fault("cut_stream", after_chunks=2)
    with pytest.raises(openai.APIError):
        for _ in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass
    assert _attrs(otel).get(FINISH) == _unfinished(mode, 1)


def test_a_finished_choice_keeps_its_reason_beside_an_unfinished_one(
    mode: str, otel: Otel, sdk: openai.OpenAI, server: OpenAIServer
) -> None:
    """n=2, closed once choice 0 finished but before choice 1 did: position 0 keeps ``stop``."""
    server.queue_reply("Done.")
    server.queue_reply("one two three four five six seven eight nine ten")
    stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2)
    for chunk in stream:
        if any(c.index == 0 and c.finish_reason for c in chunk.choices):
            break
    stream.close()
    reasons = _attrs(otel).get(FINISH)
    if mode == "latest":
        assert reasons == ("stop", "error")
    else:
        assert reasons == ("stop",)


def test_a_completed_stream_is_untouched(mode: str, otel: Otel, sdk: openai.OpenAI) -> None:
    chunks = list(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, n=2))
    assert chunks
    assert _attrs(otel)[FINISH] == ("stop", "stop")


def test_a_responses_stream_closed_early_reports_error(mode: str, otel: Otel, sdk: openai.OpenAI) -> None:
    stream = sdk.responses.create(model="gpt-4o-mini", input="Count to five", stream=True)
    next(iter(stream))
    stream.close()
    assert _attrs(otel).get(FINISH) == _unfinished(mode, 1)


@pytest.mark.parametrize("effort", ["low", "high", "minimal"])
def test_responses_reasoning_effort_is_the_exact_string_sent(
    mode: str, otel: Otel, sdk: openai.OpenAI, server: OpenAIServer, effort: str
) -> None:
    sdk.responses.create(model="o4-mini", input="Think", reasoning={"effort": effort, "summary": "auto"})
    attrs = _attrs(otel)
    assert attrs[LEVEL[mode]] == effort
    assert LEVEL["v1.41" if mode == "latest" else "latest"] not in attrs
    assert server.requests[-1].body["reasoning"]["effort"] == effort  # what the provider got


def test_chat_reasoning_effort_reaches_the_same_attribute(mode: str, otel: Otel, sdk: openai.OpenAI) -> None:
    sdk.chat.completions.create(model="o4-mini", messages=MESSAGES, reasoning_effort="medium")
    attrs = _attrs(otel)
    assert attrs[LEVEL[mode]] == "medium"
    assert LEVEL["v1.41" if mode == "latest" else "latest"] not in attrs


def test_no_reasoning_requested_no_attribute(mode: str, otel: Otel, sdk: openai.OpenAI) -> None:
    sdk.responses.create(model="gpt-4o-mini", input="Hi")
    attrs = _attrs(otel)
    assert not {LEVEL["latest"], LEVEL["v1.41"]} & set(attrs)
