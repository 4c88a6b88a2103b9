"""What ``on_llm_end`` receives: a small, always-populated view of one LLM response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; ``0`` when the provider did not report them.

    The counts stay ints so arithmetic always works; ``known`` tells a real ``0`` from "not
    reported" (a stream without ``stream_options={"include_usage": True}``, a span without
    ``gen_ai.usage.*`` attributes): it is ``False`` then, and every count is ``0``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    #: Prompt tokens served from the provider's cache (part of ``prompt_tokens``).
    cached_tokens: int = 0
    #: Reasoning tokens (part of ``completion_tokens``).
    reasoning_tokens: int = 0
    #: ``False`` when the call reported no usage at all (the counts are then ``0``, not measured).
    known: bool = True

    # Conventions' names, for code written against OTel GenAI semantics.
    @property
    def input_tokens(self) -> int:
        return self.prompt_tokens

    @property
    def output_tokens(self) -> int:
        return self.completion_tokens


@dataclass(frozen=True)
class LLMResponse:
    """One LLM response as callbacks see it, whoever produced the span."""

    #: The assistant's text ("" when none: tool calls only, embeddings, content not captured).
    content: str = ""
    #: Token counts; ``usage.known`` is ``False`` when the call reported none.
    usage: Usage = field(default_factory=lambda: Usage(known=False))
    #: The model that answered (``gen_ai.response.model``, else the requested model).
    model: str | None = None
    #: Finish reason of the first choice (``stop``, ``length``, ``tool_calls``, ...).
    finish_reason: str | None = None
    #: Tool calls requested by the model: ``{"id", "name", "arguments"}`` dicts.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: The SDK's response object when the call was made in this process, else ``None``.
    raw: Any = None
    #: Estimated USD cost (``gen_ai.usage.cost`` or the bundled price table), ``None`` if unpriced.
    cost: float | None = None
    #: ``gen_ai.response.id``.
    id: str | None = None

    @property
    def text(self) -> str:
        return self.content

    def __str__(self) -> str:
        return self.content
