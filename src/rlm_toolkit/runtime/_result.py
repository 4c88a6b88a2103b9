"""What one ``RLM.run`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

# One usage type for callbacks and results: the runtime reports what callbacks already know.
from rlm_toolkit.callbacks import Usage

__all__ = ["RLMResult", "Usage"]


@dataclass(frozen=True)
class RLMResult:
    """The outcome of one run.

    ``answer`` is the model's final text (``content`` is the same string, for code that reads
    it like an LLM response). ``error`` is set, and ``answer`` empty, only when the run was
    called with ``raise_on_error=False`` and failed.
    """

    answer: str
    #: Token totals of the run's calls; ``usage.known`` is False when a call reported none.
    usage: Usage = field(default_factory=lambda: Usage(known=False))
    #: Number of LLM calls the run made (1 for a direct run).
    iterations: int = 0
    #: Estimated cost in USD from the bundled price table; ``None`` when the model is unpriced.
    cost: float | None = None
    model: str | None = None
    finish_reason: str | None = None
    #: Hex trace id of the run span, when a span was recorded.
    trace_id: str | None = None
    error: BaseException | None = None

    @property
    def content(self) -> str:
        return self.answer

    def __str__(self) -> str:
        return self.answer
