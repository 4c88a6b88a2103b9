"""A run that fails after billed turns still reports what it spent: cost, tokens, partial answer."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl

RUN = "invoke_agent rlm"


class FaultAfterCode:
    """Queues a 500 for the next request once the first code block ran (the root's turn 2)."""

    def __init__(self, server: OpenAIServer) -> None:
        self.server = server
        self.armed = True

    def on_tool_end(self, tool_name: str, tool_output: Any = None, **kwargs: Any) -> None:
        if self.armed:
            self.armed = False
            self.server.queue_fault("server_error", times=3)


@pytest.mark.parametrize("raise_on_error", [False, True])
def test_a_run_failing_on_turn_two_reports_turn_one(
    server: OpenAIServer, otel: Otel, raise_on_error: bool
) -> None:
    # Before: cost None, 0 tokens, no partial answer (and nothing on the failed run span).
    server.queue_reply(repl('answer["content"] = "half done"\nprint(llm_query("sub"))'))
    rlm = make_rlm(server, otel, FaultAfterCode(server), max_retries=0)
    if raise_on_error:
        with pytest.raises(openai.InternalServerError):
            rlm.run("q", context="ctx")
    else:
        result = rlm.run("q", context="ctx", raise_on_error=False)
        assert isinstance(result.error, openai.InternalServerError)
        assert result.status == "error"
        assert result.answer == "half done"
        assert result.iterations == 2
        assert result.usage.known and result.usage.total_tokens > 0
        assert result.cost is not None and result.cost > 0
        assert result.subcalls == 1
    (root,) = [s for s in otel.finished() if s.name == RUN]
    attrs = dict(root.attributes or {})
    assert attrs["rlm.run.status"] == "error"
    assert int(attrs["gen_ai.usage.input_tokens"]) > 0  # type: ignore[call-overload]
    assert float(attrs["gen_ai.usage.cost"]) > 0  # type: ignore[arg-type]
    chats = [s for s in otel.finished() if s.name.startswith("chat")]
    assert float(attrs["gen_ai.usage.cost"]) == pytest.approx(  # type: ignore[arg-type]
        sum(float((s.attributes or {}).get("gen_ai.usage.cost", 0.0)) for s in chats)  # type: ignore[arg-type]
    )


async def test_an_async_run_failing_on_turn_two_reports_turn_one(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl('answer["content"] = "half done"'))
    rlm = make_rlm(server, otel, FaultAfterCode(server), max_retries=0)
    result = await rlm.arun("q", context="ctx", raise_on_error=False)
    assert (result.status, result.answer) == ("error", "half done")
    assert result.usage.total_tokens > 0 and result.cost is not None
