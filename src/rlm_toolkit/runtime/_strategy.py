"""How a run turns a prompt (and optional context) into LLM calls.

A strategy is written "sans I/O": ``plan(prompt, context)`` is a generator that yields an
:class:`LLMRequest` whenever it needs the model and receives the :class:`Completion` back; its
return value is the final answer. ``RLM.run`` and ``RLM.arun`` drive the same plan with a sync
or an async client, so a strategy is written once. :class:`DirectStrategy` is the single-call
mode; the recursive REPL runtime (``_recursive.RecursiveStrategy``, the default) extends the
same design with code executions as a second kind of step.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

from rlm_toolkit.runtime._result import Usage

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class LLMRequest:
    """One chat call a strategy asks for."""

    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class Completion:
    """What one chat call returned."""

    content: str
    usage: Usage
    finish_reason: str | None
    model: str | None
    #: The USD cost its LLM span carries (``gen_ai.usage.cost``); None: unpriced or unreported.
    cost: float | None = None

    def __post_init__(self) -> None:
        # The boundary for model text: a lone surrogate (a bad JSON escape in a reply) becomes
        # U+FFFD here, so no answer, transcript or sandbox message holds an unencodable str.
        if _SURROGATE.search(self.content) is not None:
            object.__setattr__(self, "content", _SURROGATE.sub("\ufffd", self.content))


Plan = Generator[LLMRequest, Completion, str]


class Strategy(Protocol):
    def plan(self, prompt: str, context: Any) -> Plan:
        """Yield the LLM requests the run needs; return the final answer.

        ``context``: None, a str, a list of str or a dict, as given to ``RLM.run``.
        """
        ...

    def messages(self, prompt: str, context: Any) -> list[dict[str, Any]]:
        """Messages of the single call ``RLM.stream`` makes."""
        ...


class DirectStrategy:
    """One chat call. Without context the messages are exactly ``[{"role": "user", "content": prompt}]``.

    With context, the context is put into the same user message ahead of the question. That is
    the honest minimum until the recursive runtime, which keeps large contexts out of the
    prompt, replaces this strategy.
    """

    def messages(self, prompt: str, context: Any) -> list[dict[str, Any]]:
        if context is None:
            return [{"role": "user", "content": prompt}]
        return [{"role": "user", "content": f"Context:\n{context}\n\nQuestion: {prompt}"}]

    def plan(self, prompt: str, context: Any) -> Plan:
        completion = yield LLMRequest(self.messages(prompt, context))
        return completion.content
