"""Code cannot pick a model to spend outside the budget; batched sub-calls reserve before sending."""

from __future__ import annotations

import asyncio

import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl

BATCH = 'r = llm_query_batched(["summarise this " * 200] * 64)\nprint(len(r))'


def _models_asked(server: OpenAIServer) -> list[str]:
    return [str((r.body or {}).get("model")) for r in server.requests]


def test_code_may_not_name_another_model(server: OpenAIServer, otel: Otel) -> None:
    # Before: llm_query(p, model="unpriced-x") cost $0, so 60 calls passed max_cost_usd=0.002.
    server.queue_reply(repl('for i in range(60):\n    llm_query("hi", model="unpriced-x")'))
    server.queue_reply("FINAL(done)")
    result = make_rlm(server, otel, config=RLMConfig(max_cost_usd=0.002)).run("q", context="ctx")
    assert "unpriced-x" not in _models_asked(server)
    assert result.subcalls == 0
    feedback = str(result.transcript[3]["content"])
    assert "model 'unpriced-x' is not allowed" in feedback
    assert "allowed_models" in feedback


def test_an_allowed_unpriced_model_stops_a_cost_budget(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl('for i in range(60):\n    llm_query("hi", model="unpriced-x")'))
    config = RLMConfig(max_cost_usd=0.002, allowed_models=("unpriced-x",))
    result = make_rlm(server, otel, config=config).run("q", context="ctx")
    assert result.status == "budget"
    assert _models_asked(server).count("unpriced-x") == 1
    (run,) = [s for s in otel.finished() if s.name == "invoke_agent rlm"]
    assert "has no price" in str((run.attributes or {})["rlm.run.stop_reason"])


def test_without_a_cost_budget_an_allowed_model_is_used(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl('print(llm_query("hi", model="other-model"))\nFINAL("ok")'))
    result = make_rlm(server, otel, config=RLMConfig(allowed_models=("other-model",))).run("q", context="c")
    assert result.status == "final"
    assert "other-model" in _models_asked(server)


@pytest.mark.parametrize("fraction", [0.25, 0.5])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_batched_subcalls_stay_within_the_cost_budget(
    server: OpenAIServer, otel: Otel, fraction: float, mode: str
) -> None:
    # Before: 64 batched sub-calls (8 in flight) overshot the budget by 23-43%; now the
    # overshoot is at most one call's cost (calls here are alike).
    server.queue_reply(repl(BATCH))
    full = make_rlm(server, otel).run("q", context="c")
    assert full.cost is not None
    one_call = max(u.cost or 0.0 for u in full.by_model.values()) / full.subcalls
    limit = full.cost * fraction
    server.queue_reply(repl(BATCH))
    rlm = make_rlm(server, otel, config=RLMConfig(max_cost_usd=limit))
    result = rlm.run("q", context="c") if mode == "sync" else asyncio.run(rlm.arun("q", context="c"))
    assert result.status == "budget"
    assert result.cost is not None
    assert result.cost <= limit + one_call


@pytest.mark.parametrize("bad", [["gpt-4o"], ("",), (3,)])
def test_allowed_models_is_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="allowed_models must be a tuple of model names"):
        RLMConfig(allowed_models=bad)  # type: ignore[arg-type]


def test_the_rlms_own_unpriced_model_is_unpriced_not_refused(server: OpenAIServer, otel: Otel) -> None:
    # The user's own sub_model with no price: the run goes on, the budget is not charged, and
    # the result shows the model as unpriced; only a model the code named is refused.
    server.queue_reply(repl('print(llm_query("hi"))\nFINAL("ok")'))
    config = RLMConfig(max_cost_usd=0.002, sub_model="unpriced-sub")
    result = make_rlm(server, otel, config=config).run("q", context="ctx")
    assert result.status == "final"
    assert "unpriced-sub" in _models_asked(server)
    assert result.by_model["unpriced-sub"].cost is None
