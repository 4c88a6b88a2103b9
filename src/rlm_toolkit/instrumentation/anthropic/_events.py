"""The Messages stream accumulator: raw SSE events -> fields of an invocation, on every exit path.

One handler serves ``messages.create(stream=True)`` (raw events) and ``messages.stream()``
(whose ``MessageStream`` also yields derived ``text``/``thinking``/``input_json``/
``signature``/``citation`` events and a ``message_stop`` carrying the snapshot: derived events
are ignored, so nothing is counted twice).

Usage in a stream is cumulative, not additive: ``message_start`` carries the input counts and a
placeholder output count; each ``message_delta`` carries the running totals, which replace
(never add to) what came before, and the input counts survive when a delta omits them. So a
stream closed early reports the output tokens the API had reported so far (the placeholder
only if no ``message_delta`` arrived), counted once.
"""

from __future__ import annotations

import json
from time import perf_counter_ns
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.genai import ChunkHandler, Invocation
from rlm_toolkit.instrumentation.anthropic._response import (
    Target,
    cache_write_1h,
    finish_reason,
    raw_counts,
    total_input,
)


class _Block:
    __slots__ = ("id", "kind", "name", "pieces")

    def __init__(self, kind: str, id: Any = None, name: Any = None) -> None:
        self.kind = kind
        self.id = id
        self.name = name
        self.pieces: list[str] = []

    def part(self) -> dict[str, Any]:
        text = "".join(self.pieces)
        if self.kind == "text":
            return {"type": "text", "content": text}
        if self.kind == "thinking":
            return {"type": "reasoning", "content": text}
        if self.kind in ("tool_use", "server_tool_use"):
            return {"type": "tool_call", "id": self.id, "name": self.name, "arguments": _json(text)}
        return {"type": self.kind}


def _json(text: str) -> Any:
    """Streamed tool input: the parsed JSON when complete, else the raw fragment text."""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


class MessageEvents(ChunkHandler):
    """Accumulates a Messages stream for its span (see the module docstring)."""

    __slots__ = (
        "blocks",
        "id",
        "model",
        "output",
        "read",
        "reasoning",
        "stop_reason",
        "stopped",
        "uncached",
        "wants_content",
        "write",
        "write_1h",
    )

    def __init__(self, inv: Invocation) -> None:
        super().__init__(inv)
        self.wants_content: bool = inv.wants_content
        self.id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        #: ``message_stop`` arrived: the stream is complete.
        self.stopped = False
        self.uncached: int | None = None
        self.output: int | None = None
        self.read: int | None = None
        self.write: int | None = None
        self.write_1h: int | None = None
        self.reasoning: int | None = None
        self.blocks: dict[int, _Block] = {}

    def on_chunk(self, event: Any) -> None:
        n = self.count
        self.count = n + 1
        if not n:
            self.first_ns = perf_counter_ns()
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                text = delta.text
                if self.wants_tokens and text:
                    self.token(text)
                if self.wants_content:
                    self._piece(event.index, text)
            elif self.wants_content:
                if delta.type == "thinking_delta":
                    self._piece(event.index, delta.thinking)
                elif delta.type == "input_json_delta":
                    self._piece(event.index, delta.partial_json)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._usage(event.usage)
        elif kind == "message_start":
            message = event.message
            self.id = message.id or None
            self.model = message.model or None
            self._usage(message.usage)
        elif kind == "content_block_start":
            if self.wants_content:
                block = event.content_block
                self.blocks[event.index] = _Block(
                    block.type, getattr(block, "id", None), getattr(block, "name", None)
                )
        elif kind == "message_stop":
            self.stopped = True

    def _piece(self, index: int, text: str) -> None:
        block = self.blocks.get(index)
        if block is None:  # a delta without its start (should not happen): keep the text
            block = self.blocks[index] = _Block("text")
        block.pieces.append(text)

    def _usage(self, usage: Any) -> None:
        """Running totals replace earlier ones; a count the event omits keeps its last value."""
        if usage is None:
            return
        uncached, output, read, write, reasoning = raw_counts(usage)
        if uncached is not None:
            self.uncached = uncached
        if output is not None:
            self.output = output
        if read is not None:
            self.read = read
        if write is not None:
            self.write = write
        write_1h = cache_write_1h(usage)
        if write_1h is not None:
            self.write_1h = write_1h
        if reasoning is not None:
            self.reasoning = reasoning

    def finish(self, inv: Target) -> Any:
        """Fill ``inv`` with what the stream delivered; a stream without ``message_delta`` has
        no finish reason (``gen_ai.response.finish_reasons`` is left out)."""
        attrs: dict[str, Any] = {}
        if self.id:
            attrs[GA.GEN_AI_RESPONSE_ID] = self.id
        finish = finish_reason(self.stop_reason)
        if self.stop_reason is not None:
            attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
        inv.response_attributes = attrs
        inv.response_model = self.model
        inv.input_tokens = total_input(self.uncached, self.read, self.write)
        inv.output_tokens = self.output
        inv.cached_input_tokens = self.read
        inv.cache_write_tokens = self.write
        inv.cache_write_1h_tokens = self.write_1h
        inv.reasoning_tokens = self.reasoning
        if self.wants_content:
            parts = [self.blocks[i].part() for i in sorted(self.blocks)]
            inv.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": finish}]
        return None
