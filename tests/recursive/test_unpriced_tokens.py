"""Spending the cost budget cannot see still counts against ``max_tokens``.

A call of the RLM's own model with no known price costs the cost budget nothing (it shows as
unpriced); its tokens count against ``max_tokens`` like any other. A call that reports no
usage at all cannot be counted: under ``max_tokens`` it stops the run (status ``budget``)
rather than passing as zero tokens.
"""

from __future__ import annotations

from typing import Any

from rlm_toolkit import RLMConfig
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl


class Tokens(BaseCallback):
    """Wants tokens: the run's calls are streamed (the offline server's no_usage applies there)."""

    def on_token(self, token: str, **kwargs: Any) -> None:
        pass


LOOP = 'for i in range(60):\n    llm_query("summarise " * 50)'


def _run_attrs(otel: Otel) -> dict[str, object]:
    (run,) = [s for s in otel.finished() if s.name == "invoke_agent rlm"]
    return dict(run.attributes or {})


def test_an_unpriced_own_model_still_counts_against_max_tokens(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl(LOOP), to="root")
    config = RLMConfig(max_tokens=3_000, max_cost_usd=1.0)
    result = make_rlm(server, otel, model="local-unpriced-model", config=config).run("q", context="ctx")
    assert result.status == "budget"
    assert result.by_model["local-unpriced-model"].cost is None  # unpriced, visibly
    assert result.cost in (None, 0, 0.0)
    assert "token budget used up" in str(_run_attrs(otel)["rlm.run.stop_reason"])
    # Each sub-call is a few hundred tokens: the run stopped long before its 60 sub-calls,
    # overshooting by at most the call that crossed the limit (one code execution's calls
    # are checked one by one).
    assert result.subcalls < 60
    per_call = max(m.usage.total_tokens / max(m.calls, 1) for m in result.by_model.values())
    assert result.usage.total_tokens <= 3_000 + 2 * per_call


def test_a_call_without_usage_stops_a_token_budget(server: OpenAIServer, otel: Otel) -> None:
    # Before: it counted as 0 tokens, so 60 such sub-calls went through max_tokens=3000.
    server.queue_reply(repl(LOOP), to="root")
    server.queue_fault("no_usage", times=100)  # from the first (root) call on
    result = make_rlm(server, otel, Tokens(), config=RLMConfig(max_tokens=3_000)).run("q", context="ctx")
    assert result.status == "budget"
    assert result.subcalls <= 1
    reason = str(_run_attrs(otel)["rlm.run.stop_reason"])
    assert "reported no token usage" in reason and "max_tokens" in reason


def test_without_max_tokens_a_call_without_usage_is_fine(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl('print(llm_query("hi"))'), to="root")
    server.queue_reply("FINAL(done)", to="root")
    server.queue_fault("no_usage", times=100)
    result = make_rlm(server, otel, Tokens()).run("q", context="ctx")
    assert (result.status, result.answer) == ("final", "done")
    assert result.usage.known is False
