"""Pure response extractors: an Anthropic ``Message`` (or an API error) -> fields of an invocation.

They fill the same fields the openai extractors fill (``response_model``, the token counts,
``response_attributes``, ``output_messages`` when ``inv.wants_content``), so the wiring uses
both SDKs' tables the same way. Token counts follow the conventions:
``gen_ai.usage.input_tokens`` is every input token, so Anthropic's ``input_tokens`` (the
uncached part only) plus ``cache_read_input_tokens`` plus ``cache_creation_input_tokens``; the
cache read and write counts are reported beside it. The part of the writes with a 1-hour TTL
(``cache_creation.ephemeral_1h_input_tokens``, billed at 2x input rather than 1.25x) is carried
apart for the cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.instrumentation.anthropic._request import block_part


class Target(Protocol):
    """What an extractor fills: the invocation's response fields (``genai.Invocation`` has them)."""

    wants_content: bool
    response_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cache_write_tokens: int | None
    cache_write_1h_tokens: int | None
    reasoning_tokens: int | None
    response_attributes: dict[str, Any] | None
    output_messages: list[dict[str, Any]] | None


#: Anthropic ``stop_reason`` -> the conventions' finish reason (the output-message schema's
#: ``stop``, ``length``, ``content_filter``, ``tool_call``). An unknown reason passes through.
FINISH_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool loop paused; the turn ended without an error
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    """The conventions' finish reason for a ``stop_reason`` (``error`` when there is none)."""
    if not isinstance(stop_reason, str) or not stop_reason:
        return "error"
    return FINISH_REASONS.get(stop_reason, stop_reason)


def _count(value: Any) -> int | None:
    """A token count as reported: an int (0 included: a reported 0 is information), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)


def raw_counts(usage: Any) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """(uncached input, output, cache read, cache write, reasoning) as a ``usage`` object (SDK
    object or dict) reports them; ``reasoning`` is ``output_tokens_details.thinking_tokens``."""
    details = _field(usage, "output_tokens_details")
    return (
        _count(_field(usage, "input_tokens")),
        _count(_field(usage, "output_tokens")),
        _count(_field(usage, "cache_read_input_tokens")),
        _count(_field(usage, "cache_creation_input_tokens")),
        _count(_field(details, "thinking_tokens")) if details is not None else None,
    )


def cache_write_1h(usage: Any) -> int | None:
    """The 1-hour-TTL part of a ``usage`` object's cache writes
    (``cache_creation.ephemeral_1h_input_tokens``), or None when the usage does not split them."""
    creation = _field(usage, "cache_creation")
    return None if creation is None else _count(_field(creation, "ephemeral_1h_input_tokens"))


def total_input(uncached: int | None, read: int | None, write: int | None) -> int | None:
    """The conventions' ``gen_ai.usage.input_tokens``: uncached + cache read + cache write."""
    return None if uncached is None else uncached + (read or 0) + (write or 0)


def usage_counts(usage: Any) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """(input, output, cache read, cache write, reasoning) token counts of a ``usage`` object,
    ``input`` being the conventions' total (see :func:`total_input`)."""
    if usage is None:
        return None, None, None, None, None
    uncached, output, read, write, reasoning = raw_counts(usage)
    return total_input(uncached, read, write), output, read, write, reasoning


def apply_usage(inv: Target, usage: Any) -> None:
    """``usage`` -> the invocation's token counts (nothing when ``usage`` is None)."""
    if usage is None:
        return
    total, output, read, write, reasoning = usage_counts(usage)
    inv.input_tokens = total
    inv.output_tokens = output
    inv.cached_input_tokens = read
    inv.cache_write_tokens = write
    inv.cache_write_1h_tokens = cache_write_1h(usage)
    inv.reasoning_tokens = reasoning


def output_message(content: Any, finish: str) -> dict[str, Any]:
    """The assistant message of a response's content blocks, in the conventions' shape."""
    parts = [p for p in map(block_part, content or ()) if p is not None]
    return {"role": "assistant", "parts": parts, "finish_reason": finish}


def message_response(inv: Target, response: Any) -> None:
    """``Message`` (or ``ParsedMessage``, ``BetaMessage``): id, model, finish reason, usage and,
    when content is wanted, the output message."""
    attrs: dict[str, Any] = {}
    rid = getattr(response, "id", None)
    if rid:
        attrs[GA.GEN_AI_RESPONSE_ID] = rid
    finish = finish_reason(getattr(response, "stop_reason", None))
    attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
    inv.response_attributes = attrs
    inv.response_model = getattr(response, "model", None) or None
    apply_usage(inv, getattr(response, "usage", None))
    if inv.wants_content:
        inv.output_messages = [output_message(getattr(response, "content", None), finish)]


def count_tokens_response(inv: Target, response: Any) -> None:
    """``MessageTokensCount`` of ``messages.count_tokens``: its ``input_tokens`` only."""
    inv.input_tokens = _count(getattr(response, "input_tokens", None))


def error_type(error: BaseException) -> str:
    """``error.type`` of a failed call: the API's error envelope ``error.type`` (e.g.
    ``overloaded_error``, ``not_found_error``; also for an in-band ``error`` event of a
    stream), else the exception's qualified class name (connection errors, timeouts, ours)."""
    kind = getattr(error, "type", None)
    if not isinstance(kind, str) or not kind:
        body = getattr(error, "body", None)
        inner = body.get("error") if isinstance(body, Mapping) else None
        kind = inner.get("type") if isinstance(inner, Mapping) else None
    if isinstance(kind, str) and kind:
        return kind
    return type(error).__qualname__
