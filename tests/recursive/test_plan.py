"""The recursive plan, sans I/O: what it asks for and when it ends, given replies and results."""

from __future__ import annotations

from typing import Any

import pytest

from rlm_toolkit.runtime._budget import RLMConfig
from rlm_toolkit.runtime._prompts import CORRECTION, SYSTEM_MARK, SYSTEM_PROMPT, parse_reply
from rlm_toolkit.runtime._recursive import Execute, Outcome, RecursivePlan
from rlm_toolkit.runtime._strategy import Completion, LLMRequest
from rlm_toolkit.sandbox import ExecutionResult
from rlm_toolkit.testing import _rlm_play


def Ran(
    output: str = "", error: str | None = None, final: str | None = None, answer: dict[str, Any] | None = None
) -> ExecutionResult:
    """A sandbox result as the plan receives it (no code runs in these tests)."""
    return ExecutionResult(output, error, None, final, answer, 0.0, 0)


def said(text: str) -> Completion:
    from rlm_toolkit.runtime._result import Usage

    return Completion(
        content=text,
        usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
        finish_reason="stop",
        model="m",
    )


class Driver:
    """Feeds scripted replies and results to a plan and records the steps it asked for."""

    def __init__(self, plan: RecursivePlan) -> None:
        self.plan = plan
        self.steps: list[Any] = []
        self.gen = plan.steps()
        self.pending: Any = next(self.gen)
        self.steps.append(self.pending)
        self.outcome: Outcome | None = None

    def send(self, reply: Any) -> Any:
        try:
            self.pending = self.gen.send(reply)
        except StopIteration as stop:
            self.outcome = stop.value
            self.pending = None
            return None
        self.steps.append(self.pending)
        return self.pending


def block(code: str, lang: str = "repl") -> str:
    return f"```{lang}\n{code}\n```"


def test_the_offline_model_recognises_the_runtime_system_prompt() -> None:
    assert SYSTEM_PROMPT.startswith(SYSTEM_MARK)
    assert _rlm_play.SYSTEM_MARK == SYSTEM_MARK


def test_parse_reply_reads_repl_and_python_blocks_and_prose_finals() -> None:
    reply = parse_reply(f"look\n{block('print(1)')}\nand\n{block('x = 2', 'python')}\n")
    assert reply.code == ("print(1)", "x = 2")
    assert reply.prose_final is None
    assert parse_reply("done\nFINAL(42 apples)\n").prose_final == ("text", "42 apples")
    assert parse_reply('FINAL("quoted")').prose_final == ("text", "quoted")
    assert parse_reply("FINAL_VAR(result)").prose_final == ("var", "result")
    # FINAL inside a code block is the code's business, not prose.
    assert parse_reply(block("FINAL(1)")).prose_final is None
    # Mentioning FINAL mid-sentence is not a final answer.
    assert parse_reply("I will call FINAL(x) later").prose_final is None


def test_the_first_request_keeps_the_context_out_of_the_prompt() -> None:
    context = "needle " * 100_000
    plan = RecursivePlan("Where is the needle?", context, RLMConfig())
    first = Driver(plan).pending
    assert isinstance(first, LLMRequest)
    assert first.messages[0]["content"] == SYSTEM_PROMPT
    assert "700,000 characters" in first.messages[1]["content"]
    assert sum(len(m["content"]) for m in first.messages) < 10_000


def test_code_runs_then_final_in_code_ends_the_run() -> None:
    d = Driver(RecursivePlan("q", "ctx", RLMConfig()))
    step = d.send(said(block("print(len(context))")))
    assert step == Execute("print(len(context))", 1)
    step = d.send(Ran(output="3\n"))
    assert isinstance(step, LLMRequest)
    assert "3" in step.messages[-1]["content"]
    step = d.send(said(block("FINAL('three')")))
    assert isinstance(step, Execute)
    d.send(Ran(final="three"))
    assert d.outcome == Outcome("three", "final")
    assert d.plan.iterations == 2


def test_a_reply_without_code_gets_a_correction_bounded() -> None:
    d = Driver(RecursivePlan("q", "ctx", RLMConfig(max_corrections=2)))
    for _ in range(2):
        step = d.send(said("I think the answer is probably 4."))
        assert isinstance(step, LLMRequest)
        assert step.messages[-1] == {"role": "user", "content": CORRECTION}
    d.send(said("Still no code."))
    assert d.outcome is not None
    assert d.outcome.status == "max_iterations"
    assert d.plan.iterations == 3


def test_final_in_prose_waits_for_the_code_of_the_same_reply() -> None:
    d = Driver(RecursivePlan("q", "ctx", RLMConfig()))
    step = d.send(said(f"{block('x = compute()')}\nFINAL(guess)"))
    assert step == Execute("x = compute()", 1)  # the code runs first
    step = d.send(Ran(error="NameError: name 'compute' is not defined"))
    # The code failed: the prose FINAL does not end the run; the error goes back to the model.
    assert isinstance(step, LLMRequest)
    assert "NameError" in step.messages[-1]["content"]
    step = d.send(said(f"{block('x = 5')}\nFINAL(five)"))
    d.send(Ran())
    assert d.outcome == Outcome("five", "final")


def test_final_var_in_prose_is_resolved_by_the_repl() -> None:
    d = Driver(RecursivePlan("q", "ctx", RLMConfig()))
    step = d.send(said("FINAL_VAR(missing)"))
    assert step == Execute("FINAL_VAR('missing')", 1)
    step = d.send(Ran(error="NameError: FINAL_VAR: no variable named 'missing'"))
    assert isinstance(step, LLMRequest)
    assert "no variable named 'missing'" in step.messages[-1]["content"]
    step = d.send(said("FINAL_VAR(found)"))
    d.send(Ran(final="the value"))
    assert d.outcome == Outcome("the value", "final")


def test_the_answer_dict_ends_the_run_and_its_content_is_the_partial_answer() -> None:
    d = Driver(RecursivePlan("q", "ctx", RLMConfig(max_iterations=2)))
    d.send(said(block("answer['content'] = 'half'")))
    d.send(Ran(answer={"content": "half", "ready": False}))
    d.send(said(block("pass")))
    d.send(Ran(answer={"content": "half", "ready": False}))
    assert d.outcome is not None
    assert (d.outcome.answer, d.outcome.status) == ("half", "max_iterations")
    assert d.plan.stopped("budget", "tokens").answer == "half"

    d = Driver(RecursivePlan("q", "ctx", RLMConfig()))
    d.send(said(block("answer.update(content='done', ready=True)")))
    d.send(Ran(answer={"content": "done", "ready": True}))
    assert d.outcome == Outcome("done", "final")


@pytest.mark.parametrize(
    "bad", [{"max_iterations": 0}, {"max_depth": -1}, {"max_cost_usd": -1.0}, {"max_tokens": "10"}]
)
def test_config_rejects_nonsense_with_one_line(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RLMConfig"):
        RLMConfig(**bad)
