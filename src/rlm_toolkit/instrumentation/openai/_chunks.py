"""Stream chunk handlers (one per SDK surface), called by the ``genai`` stream proxies.

``on_chunk`` is O(1) and keeps no per-chunk data unless content is wanted
(``inv.wants_content``); then it appends text deltas to a per-choice list, joined at the end.
It runs once per chunk on the user's thread, so it reads each chunk field once and does the
first-chunk work (clock, ids) in the same branch as the chunk counting.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.attributes import openai_attributes as OA

from rlm_toolkit.genai import ChunkHandler, Invocation
from rlm_toolkit.instrumentation.openai._response import responses_response, usage_chat


class _ChoiceBuffer:
    __slots__ = ("text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}


class ChatChunks(ChunkHandler):
    """``ChatCompletionChunk`` (chat) and ``Completion`` (legacy completions) streams."""

    __slots__ = (
        "buffers",
        "fingerprint",
        "id",
        "legacy",
        "missing",
        "model",
        "reasons",
        "tier",
        "usage",
        "wants_content",
    )

    def __init__(self, inv: Invocation, legacy: bool = False) -> None:
        super().__init__(inv)
        self.wants_content = inv.wants_content
        self.legacy = legacy
        self.id: str | None = None
        self.model: str | None = None
        self.tier: str | None = None
        self.fingerprint: str | None = None
        #: The first chunk lacked ``id``/``model`` (Azure's ``prompt_filter_results`` chunk):
        #: take them from the next chunks that have them.
        self.missing = False
        self.usage: Any = None
        self.reasons: dict[int, str] = {}
        self.buffers: dict[int, _ChoiceBuffer] = {}

    def on_chunk(self, chunk: Any) -> None:
        n = self.count
        self.count = n + 1
        if not n:
            self.first_ns = perf_counter_ns()
            self._identify(chunk)
        elif self.missing:
            self._identify(chunk)
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        choices = chunk.choices
        for choice in choices:
            reason = choice.finish_reason
            if reason is not None:
                self.reasons[choice.index] = reason
            if self.wants_content:
                self._buffer(choice)
        if self.wants_tokens and choices:
            first = choices[0]
            if self.legacy:
                text = first.text
            else:
                delta = first.delta
                text = delta.content if delta is not None else None
            if text:
                self.token(text)

    def _identify(self, chunk: Any) -> None:
        """The first non-empty ``id``, ``model`` and service tier of the stream."""
        self.id = self.id or chunk.id or None
        self.model = self.model or chunk.model or None
        self.tier = self.tier or getattr(chunk, "service_tier", None)
        self.fingerprint = self.fingerprint or getattr(chunk, "system_fingerprint", None)
        self.missing = self.id is None or self.model is None

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

    def finish(self, inv: Invocation) -> Any:
        attrs: dict[str, Any] = {}
        if self.id:
            attrs[GA.GEN_AI_RESPONSE_ID] = self.id
        if isinstance(self.tier, str):
            attrs[OA.OPENAI_RESPONSE_SERVICE_TIER] = self.tier
        if isinstance(self.fingerprint, str):
            attrs[OA.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = self.fingerprint
        if self.reasons:
            attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(self.reasons[i] for i in sorted(self.reasons))
        inv.response_attributes = attrs
        inv.response_model = self.model
        usage_chat(inv, self.usage)
        if self.wants_content:
            inv.output_messages = [self._message(i) for i in sorted(set(self.buffers) | set(self.reasons))]
        return None

    def absorb(self, chunk: Any) -> bool:
        """Opt-in stream usage (see ``ChunkHandler.absorb``): the usage-only chunk (no choices)
        is kept for the span and hidden. Every other chunk carries ``"usage": null`` because
        we asked for usage; the app did not, so that field is marked unset again (what
        ``to_dict()``/``model_dump(exclude_unset=True)`` show is then what it would have been)."""
        usage = chunk.usage
        if usage is None:
            fields = getattr(chunk, "__pydantic_fields_set__", None)
            if fields is not None:
                fields.discard("usage")
            return False
        if chunk.choices:
            return False
        self.usage = usage
        return True

    def _message(self, index: int) -> dict[str, Any]:
        buffer = self.buffers.get(index) or _ChoiceBuffer()
        parts: list[dict[str, Any]] = []
        if buffer.text:
            parts.append({"type": "text", "content": "".join(buffer.text)})
        parts.extend(buffer.tools[i] for i in sorted(buffer.tools))
        return {"role": "assistant", "parts": parts, "finish_reason": self.reasons.get(index, "error")}


_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponseEvents(ChunkHandler):
    """Responses API event streams: the final event carries the whole ``Response``.

    A stream that ends before its final event (closed early, abandoned, failed) keeps what it
    saw: the id/model of ``response.created`` and, when content is wanted, the text of the
    ``response.output_text.delta`` events so far (as one assistant text part).
    """

    __slots__ = ("created", "response", "text", "wants_content")

    def __init__(self, inv: Invocation) -> None:
        super().__init__(inv)
        self.wants_content = inv.wants_content
        self.created: Any = None
        self.response: Any = None
        self.text: list[str] = []

    def on_chunk(self, event: Any) -> None:
        n = self.count
        self.count = n + 1
        if not n:
            self.first_ns = perf_counter_ns()
        kind = event.type
        if kind == "response.output_text.delta":
            delta = event.delta
            if self.wants_content:
                self.text.append(delta)
            if self.wants_tokens and delta:
                self.token(delta)
        elif kind in _FINAL_EVENTS:
            self.response = event.response
        elif kind == "response.created":
            self.created = event.response

    def finish(self, inv: Invocation) -> Any:
        if self.response is not None:
            responses_response(inv, self.response)
            return self.response
        created = self.created
        if created is not None:
            inv.response_model = getattr(created, "model", None)
            if getattr(created, "id", None):
                inv.response_attributes = {GA.GEN_AI_RESPONSE_ID: created.id}
        if self.wants_content:
            parts = [{"type": "text", "content": "".join(self.text)}] if self.text else []
            # No final event: the stream did not finish, so there is no finish reason.
            inv.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": "error"}]
        return None
