"""The recursive strategy: the root model drives a sandboxed REPL that holds the context.

Sans I/O like :class:`~rlm_toolkit.runtime._strategy.DirectStrategy`: :meth:`RecursivePlan.steps`
yields an :class:`~rlm_toolkit.runtime._strategy.LLMRequest` (answered with a ``Completion``)
or an :class:`Execute` (answered with the sandbox's ``ExecutionResult``), and returns the
:class:`Outcome`. The drivers in ``_loop`` do the I/O (sync or async), the telemetry and the
budget checks; a limit hit there ends the plan with :meth:`RecursivePlan.stopped`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from rlm_toolkit.runtime import _prompts
from rlm_toolkit.runtime._budget import STATUS_FINAL, STATUS_MAX_ITERATIONS, RLMConfig
from rlm_toolkit.runtime._strategy import Completion, DirectStrategy, LLMRequest, Plan
from rlm_toolkit.sandbox import ExecutionResult


@dataclass(frozen=True)
class Execute:
    """Run ``code`` in the run's REPL (one code block of the root model's reply)."""

    code: str
    iteration: int


@dataclass(frozen=True)
class Outcome:
    answer: str
    status: str
    #: Why the run stopped, when it did not finish normally (a limit, a failed sub-run).
    reason: str | None = None


Step = LLMRequest | Execute
StepPlan = Generator[Step, Any, Outcome]


class RecursiveStrategy:
    """A run with context is a recursive REPL run; without context it is one direct call.

    ``RLM(...).run(prompt)`` therefore keeps its single-call behaviour, and
    ``run(prompt, context=...)`` keeps the context out of every prompt.
    """

    def __init__(self, config: RLMConfig | None = None) -> None:
        self.config = config if config is not None else RLMConfig()
        self._direct = DirectStrategy()

    def messages(self, prompt: str, context: Any) -> list[dict[str, Any]]:
        return self._direct.messages(prompt, context)

    def plan(self, prompt: str, context: Any) -> Plan:
        return self._direct.plan(prompt, context)

    def recursive_plan(self, prompt: str, context: Any) -> RecursivePlan:
        return RecursivePlan(prompt, context, self.config)


class RecursivePlan:
    """State of one recursive run: the conversation, the iteration count, the partial answer."""

    def __init__(self, prompt: str, context: Any, config: RLMConfig) -> None:
        self.config = config
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": _prompts.SYSTEM_PROMPT},
            {"role": "user", "content": _prompts.first_message(prompt, context)},
        ]
        self.iterations = 0
        self.last: Completion | None = None
        #: ``answer["content"]`` as last seen, kept as the partial answer if a limit stops the run.
        self.partial = ""

    def stopped(self, status: str, reason: str) -> Outcome:
        """The outcome when the driver stops the run at a limit."""
        return Outcome(self.partial, status, reason)

    def steps(self) -> StepPlan:
        config = self.config
        corrections = 0
        while self.iterations < config.max_iterations:
            self.iterations += 1
            completion: Completion = yield LLMRequest(
                _prompts.bounded(self.messages, config.max_prompt_chars)
            )
            self.last = completion
            self.messages.append({"role": "assistant", "content": completion.content})
            reply = _prompts.parse_reply(completion.content)
            if not reply.code:
                if reply.prose_final is not None:
                    outcome = yield from self._prose_final(reply.prose_final)
                    if outcome is not None:
                        return outcome
                    continue
                corrections += 1
                if corrections > config.max_corrections:
                    return Outcome(self.partial, STATUS_MAX_ITERATIONS, "no code in too many replies")
                self.messages.append({"role": "user", "content": _prompts.CORRECTION})
                continue
            outputs: list[tuple[str, str | None]] = []
            clean = True
            for code in reply.code:
                result = yield Execute(code, self.iterations)
                outputs.append((result.output, result.error))
                done = self._finished(result)
                if done is not None:
                    self.messages.append(
                        {
                            "role": "user",
                            "content": _prompts.feedback(self.iterations, outputs, config.max_output_chars),
                        }
                    )
                    return done
                clean = clean and result.error is None
            self.messages.append(
                {
                    "role": "user",
                    "content": _prompts.feedback(self.iterations, outputs, config.max_output_chars),
                }
            )
            # FINAL in prose counts only after the reply's code ran, and ran without an error.
            if reply.prose_final is not None and clean:
                outcome = yield from self._prose_final(reply.prose_final)
                if outcome is not None:
                    return outcome
        return Outcome(self.partial, STATUS_MAX_ITERATIONS, f"{config.max_iterations} iterations")

    def _finished(self, result: ExecutionResult) -> Outcome | None:
        answer = result.answer
        if isinstance(answer, dict):
            content = answer.get("content")
            if content is not None:
                self.partial = str(content)
            if answer.get("ready") is True:
                return Outcome(self.partial, STATUS_FINAL)
        if result.final is not None:
            return Outcome(str(result.final), STATUS_FINAL)
        return None

    def _prose_final(self, final: tuple[str, str]) -> Generator[Step, Any, Outcome | None]:
        kind, value = final
        if kind == "text":
            return Outcome(value, STATUS_FINAL)
        # FINAL_VAR(name) in prose: the REPL resolves it (a missing name is an error back to the model).
        result = yield Execute(f"FINAL_VAR({value!r})", self.iterations)
        done = self._finished(result)
        if done is None:
            self.messages.append(
                {
                    "role": "user",
                    "content": _prompts.feedback(
                        self.iterations, [(result.output, result.error)], self.config.max_output_chars
                    ),
                }
            )
        return done
