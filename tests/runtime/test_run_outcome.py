"""run() and arun() share one run lifecycle (RLM._running): success, a failure re-raised, a failure
returned with raise_on_error=False, and a BaseException that is never swallowed."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from rlm_toolkit.runtime import RLM, RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY


def _rlm(server: OpenAIServer, telemetry: Telemetry) -> RLM:
    return RLM.from_openai(
        "gpt-4o",
        api_key=API_KEY,
        base_url=server.base_url,
        retry=RetryPolicy(max_retries=0, initial_delay=0),
        tracer_provider=telemetry.tracer_provider,
        logger_provider=telemetry.logger_provider,
    )


def _run_span(telemetry: Telemetry) -> Any:
    (span,) = [s for s in telemetry.spans.get_finished_spans() if s.name == "invoke_agent rlm"]
    return span


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_failure_returned_when_asked(mode: str, server: OpenAIServer, telemetry: Telemetry) -> None:
    server.queue_fault("bad_request")
    rlm = _rlm(server, telemetry)
    if mode == "run":
        result = rlm.run("Hello!", raise_on_error=False)
    else:
        result = await rlm.arun("Hello!", raise_on_error=False)
    assert isinstance(result.error, openai.BadRequestError)
    assert (result.answer, result.iterations) == ("", 0)
    span = _run_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "BadRequestError"
    assert result.trace_id == format(span.context.trace_id, "032x")


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_failure_reraised_unchanged(mode: str, server: OpenAIServer, telemetry: Telemetry) -> None:
    server.queue_fault("bad_request")
    rlm = _rlm(server, telemetry)
    with pytest.raises(openai.BadRequestError):
        if mode == "run":
            rlm.run("Hello!")
        else:
            await rlm.arun("Hello!")
    assert _run_span(telemetry).status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_success_ends_the_run_span_once(mode: str, server: OpenAIServer, telemetry: Telemetry) -> None:
    server.queue_reply("Hi there!")
    rlm = _rlm(server, telemetry)
    result = rlm.run("Hello!") if mode == "run" else await rlm.arun("Hello!")
    assert (result.answer, result.iterations, result.error) == ("Hi there!", 1, None)
    span = _run_span(telemetry)  # exactly one run span
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["rlm.run.iterations"] == 1
    assert span.attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens


def test_base_exception_is_never_swallowed(
    server: OpenAIServer, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """raise_on_error=False turns Exceptions into results, never KeyboardInterrupt & co."""
    from rlm_toolkit.runtime import _rlm as rlm_module

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    rlm = _rlm(server, telemetry)
    monkeypatch.setattr(rlm_module, "drive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rlm.run("Hello!", raise_on_error=False)
    assert _run_span(telemetry).attributes["error.type"] == "KeyboardInterrupt"
