"""Pure response extractors: SDK response objects -> fields of an :class:`Invocation`.

Each reads only what the span needs; output messages (semconv shape) are built only when
``inv.wants_content`` (capture on, or an in-process consumer exists).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.attributes import openai_attributes as OA

from rlm_toolkit.attributes import RLM_EMBEDDINGS_VECTOR_COUNT
from rlm_toolkit.genai import Invocation


def _count(value: Any) -> int | None:
    """A token count as reported: an int (0 included: a reported 0 is information), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_chat(inv: Invocation, usage: Any) -> None:
    """Chat/legacy ``usage`` -> token counts. ``cache_write_tokens`` is not OpenAI's (its
    usage has none) but some OpenAI-compatible providers report it in the prompt details."""
    if usage is None:
        return
    inv.input_tokens = getattr(usage, "prompt_tokens", None)
    inv.output_tokens = getattr(usage, "completion_tokens", None)
    details = getattr(usage, "prompt_tokens_details", None)
    if details is not None:
        inv.cached_input_tokens = _count(getattr(details, "cached_tokens", None))
        inv.cache_write_tokens = _count(getattr(details, "cache_write_tokens", None))
    details = getattr(usage, "completion_tokens_details", None)
    if details is not None:
        inv.reasoning_tokens = _count(getattr(details, "reasoning_tokens", None))


_usage_chat = usage_chat


def _common(attrs: dict[str, Any], response: Any) -> None:
    rid = getattr(response, "id", None)
    if rid:
        attrs[GA.GEN_AI_RESPONSE_ID] = rid
    tier = getattr(response, "service_tier", None)
    if isinstance(tier, str):
        attrs[OA.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fingerprint = getattr(response, "system_fingerprint", None)
    if isinstance(fingerprint, str):
        attrs[OA.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint


def chat_response(inv: Invocation, response: Any) -> None:
    """``ChatCompletion`` (or ``ParsedChatCompletion``)."""
    attrs: dict[str, Any] = {}
    _common(attrs, response)
    inv.response_model = getattr(response, "model", None)
    choices = getattr(response, "choices", None) or ()
    attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(str(c.finish_reason or "error") for c in choices)
    inv.response_attributes = attrs
    _usage_chat(inv, getattr(response, "usage", None))
    if inv.wants_content:
        inv.output_messages = [_chat_choice(c) for c in choices]


def _chat_choice(choice: Any) -> dict[str, Any]:
    message = choice.message
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "content": message.content})
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        parts.append(
            {
                "type": "tool_call",
                "id": call.id,
                "name": getattr(function, "name", None),
                "arguments": getattr(function, "arguments", None),
            }
        )
    return {
        "role": message.role or "assistant",
        "parts": parts,
        "finish_reason": choice.finish_reason or "error",
    }


def completion_response(inv: Invocation, response: Any) -> None:
    """Legacy ``Completion``."""
    attrs: dict[str, Any] = {}
    _common(attrs, response)
    inv.response_model = getattr(response, "model", None)
    choices = getattr(response, "choices", None) or ()
    attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(str(c.finish_reason or "error") for c in choices)
    inv.response_attributes = attrs
    _usage_chat(inv, getattr(response, "usage", None))
    if inv.wants_content:
        inv.output_messages = [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": c.text}],
                "finish_reason": c.finish_reason or "error",
            }
            for c in choices
        ]


def embeddings_response(inv: Invocation, response: Any) -> None:
    """``CreateEmbeddingResponse``."""
    inv.response_model = getattr(response, "model", None)
    attrs: dict[str, Any] = {}
    data = getattr(response, "data", None)
    if data:
        attrs[RLM_EMBEDDINGS_VECTOR_COUNT] = len(data)
        dimensions = embedding_dimensions(getattr(data[0], "embedding", None))
        if dimensions is not None:
            attrs[GA.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    inv.response_attributes = attrs
    usage = getattr(response, "usage", None)
    if usage is not None:
        inv.input_tokens = getattr(usage, "prompt_tokens", None)


def embedding_dimensions(vector: Any) -> int | None:
    """Length of an embedding: a list of floats, or (``encoding_format="base64"``, which the
    SDK hands back as is) a base64 string of little-endian float32 values, 4 bytes each. The
    length is computed from the string, without decoding it."""
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, str) and vector and len(vector) % 4 == 0:
        size = len(vector) // 4 * 3 - (2 if vector.endswith("==") else 1 if vector.endswith("=") else 0)
        return size // 4 if size % 4 == 0 else None
    return None


def responses_finish_reason(response: Any) -> str:
    status = getattr(response, "status", None)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    if status == "failed":
        return "error"
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "function_call":
            return "tool_calls"
    return "stop"


def responses_response(inv: Invocation, response: Any) -> None:
    """Responses API ``Response`` (or ``ParsedResponse``)."""
    attrs: dict[str, Any] = {}
    _common(attrs, response)
    inv.response_model = getattr(response, "model", None)
    finish = responses_finish_reason(response)
    attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
    inv.response_attributes = attrs
    usage = getattr(response, "usage", None)
    if usage is not None:
        inv.input_tokens = getattr(usage, "input_tokens", None)
        inv.output_tokens = getattr(usage, "output_tokens", None)
        details = getattr(usage, "input_tokens_details", None)
        if details is not None:
            inv.cached_input_tokens = _count(getattr(details, "cached_tokens", None))
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:
            inv.reasoning_tokens = _count(getattr(details, "reasoning_tokens", None))
    if inv.wants_content:
        inv.output_messages = [responses_output_message(response, finish)]


def responses_output_message(response: Any, finish: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            for content in getattr(item, "content", None) or ():
                text = getattr(content, "text", None)
                if text is not None:
                    parts.append({"type": "text", "content": text})
                else:
                    refusal = getattr(content, "refusal", None)
                    parts.append({"type": "refusal", "content": refusal})
        elif kind == "function_call":
            parts.append(
                {"type": "tool_call", "id": item.call_id, "name": item.name, "arguments": item.arguments}
            )
        elif kind == "reasoning":
            summary = " ".join(getattr(s, "text", "") for s in getattr(item, "summary", None) or ())
            if summary:
                parts.append({"type": "reasoning", "content": summary})
        elif kind:
            parts.append({"type": str(kind)})
    return {"role": "assistant", "parts": parts, "finish_reason": finish}
