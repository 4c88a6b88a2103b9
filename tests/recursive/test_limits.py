"""Limits and budgets end a recursive run cleanly, with that status and the partial transcript."""

from __future__ import annotations

import openai
import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.sandbox import SandboxLimits
from rlm_toolkit.testing import OpenAIServer, make_haystack
from rlm_toolkit.testing._haystack import NEEDLE, QUESTION

from .conftest import Otel, Recorder, children_of_this_process, make_rlm, repl, tree

RUN = "invoke_agent rlm"
TOOL = "execute_tool repl"
CHAT = "chat gpt-4o-mini"


def _root(otel: Otel) -> dict[str, object]:
    (root,) = [s for s in otel.finished() if s.name == RUN and s.parent is None]
    return dict(root.attributes or {})


def test_token_budget_stops_after_the_call_that_used_it_up(server: OpenAIServer, otel: Otel) -> None:
    rlm = make_rlm(server, otel, config=RLMConfig(max_tokens=500))
    result = rlm.run(QUESTION, context=make_haystack(50_000))
    assert result.status == "budget"
    assert result.iterations == 1
    assert result.usage.total_tokens >= 500
    assert [m["role"] for m in result.transcript] == ["system", "user", "assistant"]
    assert tree(otel.finished()) == [(RUN, [(CHAT, [])])]  # the code of that reply never ran
    attrs = _root(otel)
    assert attrs["rlm.run.status"] == "budget"
    assert "token budget" in str(attrs["rlm.run.stop_reason"])
    assert attrs["rlm.budget.max_tokens"] == 500
    assert children_of_this_process() == []


def test_cost_budget_counts_the_whole_tree(server: OpenAIServer, otel: Otel) -> None:
    # Enough for the root's first turns, not for the nested run's calls as well.
    rlm = make_rlm(server, otel, config=RLMConfig(max_cost_usd=0.0006))
    result = rlm.run(QUESTION, context=make_haystack(50_000))
    assert result.status == "budget"
    assert result.cost is not None and result.cost >= 0.0006
    spans = otel.finished()
    chat_costs = sum(float((s.attributes or {})["gen_ai.usage.cost"]) for s in spans if s.name == CHAT)  # type: ignore[arg-type]
    assert result.cost == pytest.approx(chat_costs)
    assert any(s.name == RUN and s.parent is not None for s in spans)  # the nested run counted too


def test_subcall_limit_reaches_the_code_as_an_error_and_stops_the_run(
    server: OpenAIServer, otel: Otel
) -> None:
    recorder = Recorder()
    rlm = make_rlm(server, otel, recorder, config=RLMConfig(max_subcalls=1))
    result = rlm.run(QUESTION, context=make_haystack(50_000))
    assert result.status == "budget"
    assert result.subcalls == 1
    # The llm_query got its one call; the rlm_query after it raised in the code.
    tool_ends = [kw for kw in recorder.of("on_error") if kw.get("tool_name") == "repl"]
    assert len(tool_ends) == 1
    assert "sub-call limit" in str(tool_ends[0]["error"])
    assert "sub-call limit" in str(result.transcript[-1]["content"])
    assert not any(s.name == RUN and s.parent is not None for s in otel.finished())


def test_max_iterations_keeps_the_partial_answer(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl("answer['content'] = 'partial'\nprint('working')"))
    server.queue_reply(repl("print('still working')"))
    rlm = make_rlm(server, otel, config=RLMConfig(max_iterations=2))
    result = rlm.run("Anything?", context="some text")
    assert (result.status, result.answer, result.iterations) == ("max_iterations", "partial", 2)
    assert "still working" in str(result.transcript[-1]["content"])
    assert _root(otel)["rlm.run.status"] == "max_iterations"


def test_replies_without_code_get_a_bounded_correction(server: OpenAIServer, otel: Otel) -> None:
    for _ in range(3):
        server.queue_reply("I am quite sure it is 42.")
    rlm = make_rlm(server, otel, config=RLMConfig(max_corrections=2))
    result = rlm.run("Anything?", context="some text")
    assert result.status == "max_iterations"
    assert result.iterations == 3
    assert sum("no ```repl code block" in str(m["content"]) for m in result.transcript) == 2
    assert tree(otel.finished()) == [(RUN, [(CHAT, []), (CHAT, []), (CHAT, [])])]


def test_code_errors_go_back_to_the_model_and_show_on_the_span(server: OpenAIServer, otel: Otel) -> None:
    recorder = Recorder()
    server.queue_reply(repl("print('before')\n1 / 0"))
    server.queue_reply(repl("FINAL_VAR('nowhere')"))
    server.queue_reply("Done.\n" + repl("result = 'six'") + "\nFINAL_VAR(result)")
    rlm = make_rlm(server, otel, recorder)
    result = rlm.run("Anything?", context="some text")
    assert (result.status, result.answer) == ("final", "six")
    feedback = [str(m["content"]) for m in result.transcript if m["role"] == "user"][1:]
    assert "before" in feedback[0] and "ZeroDivisionError" in feedback[0]
    assert "nowhere" in feedback[1]
    tools = [dict(s.attributes or {}) for s in otel.finished() if s.name == TOOL]
    assert tools[0]["error.type"] == "ZeroDivisionError"
    assert tools[-1]["rlm.repl.final"] is True
    errors = recorder.of("on_error")
    assert [kw.get("tool_name") for kw in errors] == ["repl", "repl"]
    assert recorder.of("on_run_end")[-1]["result"] is result


def test_wall_time_limit_ends_the_run_with_timeout(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl("print('started', flush=True)\nwhile True:\n    pass"))
    # The sandbox alone would let this run past the test timeout: the run's deadline cuts it.
    limits = SandboxLimits(cpu_seconds=1000, wall_seconds=1000)
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=0.5, sandbox_limits=limits))
    result = rlm.run("Spin", context="x")
    assert result.status == "timeout"
    tools = [dict(s.attributes or {}) for s in otel.finished() if s.name == TOOL]
    assert tools[0]["rlm.repl.killed"] in {"wall", "cpu"}
    assert tools[0]["error.type"] in {"wall_limit", "cpu_limit"}
    # What the code printed before the kill still reached the model, with the reason.
    assert "started" in str(result.transcript[-1]["content"])
    assert "killed" in str(result.transcript[-1]["content"])
    assert children_of_this_process() == []


def test_sandbox_cpu_limit_kills_a_busy_loop_and_the_run_goes_on(server: OpenAIServer, otel: Otel) -> None:
    server.queue_reply(repl("while True:\n    pass"))
    server.queue_reply(repl("FINAL('recovered')"))
    limits = SandboxLimits(cpu_seconds=0.3, wall_seconds=30)
    result = make_rlm(server, otel, config=RLMConfig(sandbox_limits=limits)).run("Spin", context="x")
    assert (result.status, result.answer) == ("final", "recovered")
    tools = [dict(s.attributes or {}) for s in otel.finished() if s.name == TOOL]
    assert (tools[0]["rlm.repl.killed"], tools[0]["error.type"]) == ("cpu", "cpu_limit")


def test_depth_zero_makes_rlm_query_a_plain_subcall(server: OpenAIServer, otel: Otel) -> None:
    result = make_rlm(server, otel, config=RLMConfig(max_depth=0)).run(
        QUESTION, context=make_haystack(50_000)
    )
    assert (result.answer, result.subcalls, result.depth) == (NEEDLE, 2, 0)
    assert not any(s.name == RUN and s.parent is not None for s in otel.finished())


def test_sub_model_takes_the_subcalls(server: OpenAIServer, otel: Otel) -> None:
    result = make_rlm(server, otel, sub_model="gpt-4.1-nano").run(QUESTION, context=make_haystack(50_000))
    assert result.answer == NEEDLE
    models = [r.body.get("model") for r in server.requests if r.body]
    assert models.count("gpt-4.1-nano") == 2  # the two llm_query calls
    assert models.count("gpt-4o-mini") == 5  # root and nested-run turns
    assert set(result.by_model) >= {"gpt-4o-mini"}
    assert sum(m.calls for m in result.by_model.values()) == 7


def test_a_failing_model_call_fails_the_run_and_leaves_nothing_running(
    server: OpenAIServer, otel: Otel
) -> None:
    server.queue_fault("server_error", times=10)
    rlm = make_rlm(server, otel, max_retries=0)
    with pytest.raises(openai.InternalServerError):
        rlm.run("Anything?", context="some text")
    kept = rlm.run("Anything?", context="some text", raise_on_error=False)
    assert kept.status == "error" and isinstance(kept.error, openai.InternalServerError)
    assert children_of_this_process() == []


@pytest.mark.parametrize(
    ("context", "message"),
    [(42, "context must be a str, a list of str, a dict or None"), ([1, 2], "context must be")],
)
def test_bad_context_is_one_clear_error_before_anything_starts(
    server: OpenAIServer, otel: Otel, context: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        make_rlm(server, otel).run("q", context=context)  # type: ignore[arg-type]
    assert server.requests == []
    assert otel.finished() == []


def test_rlm_query_with_a_context_of_another_json_shape_gets_it_as_text(
    server: OpenAIServer, otel: Otel
) -> None:
    server.queue_reply(repl("r = rlm_query('What is in it?', context=[1, 2, 3])\nFINAL(r)"))
    result = make_rlm(server, otel).run("Anything?", context="some text")
    assert result.status == "final"
    assert result.depth == 1
    (nested,) = [s for s in otel.finished() if s.name == RUN and s.parent is not None]
    assert dict(nested.attributes or {})["rlm.run.context_chars"] == len("[1, 2, 3]")
