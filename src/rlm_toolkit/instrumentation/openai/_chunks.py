"""Stream chunk handlers (one per SDK surface), plugged into ``genai.StreamState``.

``on_chunk`` is O(1) and keeps no per-chunk data unless content is wanted
(``inv.wants_content``); then it appends text deltas to a per-choice list, joined at the end.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.attributes import openai_attributes as OA

from rlm_toolkit.genai import Invocation
from rlm_toolkit.instrumentation.openai._response import responses_response


class _ChoiceBuffer:
    __slots__ = ("text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}


class ChatChunks:
    """``ChatCompletionChunk`` (chat) and ``Completion`` (legacy completions) streams."""

    __slots__ = ("buffers", "id", "legacy", "model", "reasons", "tier", "usage", "wants_content")

    def __init__(self, wants_content: bool, legacy: bool = False) -> None:
        self.wants_content = wants_content
        self.legacy = legacy
        self.id: str | None = None
        self.model: str | None = None
        self.tier: str | None = None
        self.usage: Any = None
        self.reasons: dict[int, str] = {}
        self.buffers: dict[int, _ChoiceBuffer] = {}

    def on_chunk(self, chunk: Any) -> None:
        if self.id is None:
            self.id = chunk.id
            self.model = chunk.model
            self.tier = getattr(chunk, "service_tier", None)
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        for choice in chunk.choices:
            reason = choice.finish_reason
            if reason is not None:
                self.reasons[choice.index] = reason
            if self.wants_content:
                self._buffer(choice)

    def _buffer(self, choice: Any) -> None:
        buffer = self.buffers.get(choice.index)
        if buffer is None:
            buffer = self.buffers[choice.index] = _ChoiceBuffer()
        if self.legacy:
            if choice.text:
                buffer.text.append(choice.text)
            return
        delta = choice.delta
        if delta is None:
            return
        if delta.content:
            buffer.text.append(delta.content)
        for call in delta.tool_calls or ():
            entry = buffer.tools.get(call.index)
            if entry is None:
                entry = buffer.tools[call.index] = {
                    "type": "tool_call",
                    "id": None,
                    "name": None,
                    "arguments": "",
                }
            if call.id:
                entry["id"] = call.id
            function = call.function
            if function is not None:
                if function.name:
                    entry["name"] = function.name
                if function.arguments:
                    entry["arguments"] += function.arguments

    def token_text(self, chunk: Any) -> str | None:
        choices = chunk.choices
        if not choices:
            return None
        if self.legacy:
            text: str | None = choices[0].text
            return text
        delta = choices[0].delta
        return delta.content if delta is not None else None

    def finish(self, inv: Invocation) -> Any:
        attrs: dict[str, Any] = {}
        if self.id:
            attrs[GA.GEN_AI_RESPONSE_ID] = self.id
        if isinstance(self.tier, str):
            attrs[OA.OPENAI_RESPONSE_SERVICE_TIER] = self.tier
        if self.reasons:
            attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(self.reasons[i] for i in sorted(self.reasons))
        inv.response_attributes = attrs
        inv.response_model = self.model
        usage = self.usage
        if usage is not None:
            inv.input_tokens = usage.prompt_tokens
            inv.output_tokens = usage.completion_tokens
            details = getattr(usage, "prompt_tokens_details", None)
            if details is not None:
                inv.cached_input_tokens = details.cached_tokens
            details = getattr(usage, "completion_tokens_details", None)
            if details is not None:
                inv.reasoning_tokens = details.reasoning_tokens
        if self.wants_content:
            inv.output_messages = [self._message(i) for i in sorted(set(self.buffers) | set(self.reasons))]
        return None

    def _message(self, index: int) -> dict[str, Any]:
        buffer = self.buffers.get(index) or _ChoiceBuffer()
        parts: list[dict[str, Any]] = []
        if buffer.text:
            parts.append({"type": "text", "content": "".join(buffer.text)})
        parts.extend(buffer.tools[i] for i in sorted(buffer.tools))
        return {"role": "assistant", "parts": parts, "finish_reason": self.reasons.get(index, "error")}


_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponseEvents:
    """Responses API event streams: the final event carries the whole ``Response``."""

    __slots__ = ("created", "response")

    def __init__(self) -> None:
        self.created: Any = None
        self.response: Any = None

    def on_chunk(self, event: Any) -> None:
        kind = event.type
        if kind in _FINAL_EVENTS:
            self.response = event.response
        elif kind == "response.created":
            self.created = event.response

    def token_text(self, event: Any) -> str | None:
        if event.type == "response.output_text.delta":
            delta: str | None = event.delta
            return delta
        return None

    def finish(self, inv: Invocation) -> Any:
        if self.response is not None:
            responses_response(inv, self.response)
            return self.response
        created = self.created
        if created is not None:
            inv.response_model = getattr(created, "model", None)
            if getattr(created, "id", None):
                inv.response_attributes = {GA.GEN_AI_RESPONSE_ID: created.id}
        return None
