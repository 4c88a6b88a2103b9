"""What one ``RLM.run`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# One usage type for callbacks and results: the runtime reports what callbacks already know.
from rlm_toolkit.callbacks._types import Usage

__all__ = ["ModelUsage", "RLMResult", "Usage"]


@dataclass(frozen=True)
class ModelUsage:
    """Calls, tokens and estimated cost of one model over a run tree."""

    calls: int = 0
    usage: Usage = field(default_factory=lambda: Usage(known=False))
    #: USD from the bundled price table; ``None`` when the model is unpriced.
    cost: float | None = None


@dataclass(frozen=True)
class RLMResult:
    """The outcome of one run.

    ``answer`` is the model's final text (``content`` is the same string, for code that reads
    it like an LLM response). ``error`` is set, and ``answer`` empty, only when the run was
    called with ``raise_on_error=False`` and failed.
    """

    answer: str
    #: Token totals of the run's calls (of the whole recursion tree for a recursive run);
    #: ``usage.known`` is False when a call reported none.
    usage: Usage = field(default_factory=lambda: Usage(known=False))
    #: Number of LLM calls the run made (1 for a direct run); root-model turns for a recursive run.
    iterations: int = 0
    #: Estimated cost in USD from the bundled price table (the recursion tree's, summed);
    #: ``None`` when no model of the run is priced.
    cost: float | None = None
    model: str | None = None
    finish_reason: str | None = None
    #: Hex trace id of the run span, when a span was recorded.
    trace_id: str | None = None
    error: BaseException | None = None
    #: How the run ended: ``final`` (an answer), ``max_iterations``, ``budget``, ``timeout``,
    #: ``error``. A run that stopped at a limit keeps its partial answer (``answer["content"]``).
    status: str = "final"
    #: ``llm_query``/``rlm_query`` sub-calls of the whole recursion tree (0 for a direct run).
    subcalls: int = 0
    #: Deepest nested ``rlm_query`` run reached (0: the root only).
    depth: int = 0
    #: Calls, usage and cost per model over the recursion tree (empty for a direct run).
    by_model: Mapping[str, ModelUsage] = field(default_factory=dict)
    #: The root run's conversation (system prompt, replies, REPL feedback), partial at a limit.
    transcript: tuple[Mapping[str, Any], ...] = ()

    @property
    def content(self) -> str:
        return self.answer

    def __str__(self) -> str:
        return self.answer
