"""Anthropic's Messages API wire format, as the offline server speaks it.

What differs from the OpenAI side lives here: the error envelope
(``{"type": "error", "error": {"type", "message"}, "request_id"}``), the error type of each
HTTP status, the response headers (``request-id``), the message object and its usage, and the
typed SSE events (``message_start`` ... ``message_stop``, ``ping``, ``error``). The HTTP layer
asks :func:`owns` whether a path speaks this dialect and then uses the helpers below.
Standard library only, like the rest of the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rlm_toolkit.testing._wire import ApiError, SseEvent

#: The path prefix of the Messages API (``/v1/messages``, ``/v1/messages/count_tokens``).
PREFIX = "/v1/messages"

#: The error ``type`` the real API answers for each HTTP status.
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_KNOWN_TYPES = frozenset(ERROR_TYPES.values())

#: What each error fault of ``queue_fault`` answers on a Messages API path: (status, message).
#: ``unavailable`` is Anthropic's 529 ``overloaded_error`` (the OpenAI side's 503).
FAULTS: Mapping[str, tuple[int, str]] = {
    "bad_request": (400, "Invalid request (injected fault)."),
    "unauthorized": (401, "invalid x-api-key"),
    "not_found": (404, "model: not found (injected fault)"),
    "rate_limit": (429, "Number of request tokens has exceeded your per-minute rate limit (injected fault)."),
    "server_error": (500, "Internal server error"),
    "unavailable": (529, "Overloaded"),
}

#: A ``content_block_delta`` event whose JSON is cut off (the ``malformed_sse`` fault).
MALFORMED_EVENT = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": \n\n'
)


def owns(path: str) -> bool:
    """True when ``path`` (no query string) belongs to the Messages API."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_type(status: int, given: str | None = None) -> str:
    """The envelope's error type: the status's (the API's mapping is one to one), else
    ``given`` when it is one of Anthropic's, else by class (5xx ``api_error``)."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    if given in _KNOWN_TYPES:
        return given  # type: ignore[return-value]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str, kind: str | None = None) -> dict[str, Any]:
    """The real API's error envelope for an HTTP error answer."""
    return {
        "type": "error",
        "error": {"type": error_type(status, kind), "message": message},
        "request_id": request_id,
    }


def api_error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    return error_body(error.status, error.message, request_id, error.type)


def fault_error(kind: str, status: int | None, request_id: str) -> tuple[int, dict[str, Any]]:
    """(status, envelope) of an error fault on a Messages API path."""
    default, message = FAULTS[kind]
    code = status or default
    return code, error_body(code, message, request_id)


def stream_error_event(kind: str = "overloaded_error", message: str = "Overloaded") -> SseEvent:
    """The ``error`` event the API sends mid-stream (the SDK raises it as a typed status error)."""
    return SseEvent({"type": "error", "error": {"type": kind, "message": message}}, event="error")


def headers(request_id: str) -> list[tuple[str, str]]:
    """Headers of every Messages API answer (the SDK reads ``request-id`` into ``_request_id``)."""
    return [("request-id", request_id), ("anthropic-organization-id", "rlm-toolkit-offline")]


# -- the message object ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One content block of a planned message: ``text``, ``thinking`` or ``tool_use``."""

    type: str
    text: str = ""
    signature: str = ""
    id: str = ""
    name: str = ""
    input: Any = None
    #: The JSON text of ``input`` as the model wrote it (streamed as ``input_json_delta``s).
    input_json: str = ""


@dataclass(frozen=True)
class Message:
    """A planned assistant message: blocks, stop reason and token counts."""

    id: str
    model: str
    blocks: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    #: Output tokens spent thinking (reported as ``output_tokens_details`` when thinking ran).
    thinking_tokens: int | None = None
    #: Prompt caching (``_anthropic_cache``): tokens read from the cache, and written to it with
    #: a 5-minute and a 1-hour TTL. ``input_tokens`` is the uncached rest, as the API reports it.
    cache: tuple[int, int, int] = (0, 0, 0)


def usage(
    input_tokens: int,
    output_tokens: int,
    thinking_tokens: int | None = None,
    cache: tuple[int, int, int] = (0, 0, 0),
) -> dict[str, Any]:
    """The usage object of a message; ``cache``: (read, 5-minute write, 1-hour write) tokens."""
    read, write_5m, write_1h = cache
    out: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }
    if thinking_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return out


def block_json(block: Block, *, opening: bool = False) -> dict[str, Any]:
    """A block as the message carries it, or (``opening``) as ``content_block_start`` opens it."""
    if block.type == "text":
        return {"type": "text", "text": "" if opening else block.text}
    if block.type == "thinking":
        return {
            "type": "thinking",
            "thinking": "" if opening else block.text,
            "signature": "" if opening else block.signature,
        }
    return {
        "type": "tool_use",
        "id": block.id,
        "name": block.name,
        "input": {} if opening else block.input,
        "caller": {"type": "direct"},
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "model": message.model,
        "id": message.id,
        "type": "message",
        "role": "assistant",
        "content": [block_json(b) for b in message.blocks],
        "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "stop_details": None,
        "usage": usage(message.input_tokens, message.output_tokens, message.thinking_tokens, message.cache),
    }


def events(message: Message, pieces: Mapping[int, list[str]]) -> Iterator[SseEvent]:
    """The SSE event sequence of ``message``; ``pieces[i]`` are block ``i``'s streamed fragments.

    Like the real API: ``message_start`` carries the input usage and a placeholder output
    count of 1, a ``ping`` follows the first ``content_block_start``, ``message_delta`` carries
    the stop reason and the cumulative usage, then ``message_stop``.
    """
    start = {**message_json(message), "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = usage(message.input_tokens, min(1, message.output_tokens), cache=message.cache)
    start["stop_details"] = None
    yield _event("message_start", message=start)
    for index, block in enumerate(message.blocks):
        yield _event("content_block_start", index=index, content_block=block_json(block, opening=True))
        if index == 0:
            yield _event("ping")
        for piece in pieces.get(index, ()):
            yield _event("content_block_delta", token=True, index=index, delta=_delta(block, piece))
        if block.type == "thinking":
            signature = {"type": "signature_delta", "signature": block.signature}
            yield _event("content_block_delta", index=index, delta=signature)
        yield _event("content_block_stop", index=index)
    final_usage: dict[str, Any] = {
        "input_tokens": message.input_tokens,
        "cache_creation_input_tokens": message.cache[1] + message.cache[2],
        "cache_read_input_tokens": message.cache[0],
        "output_tokens": message.output_tokens,
    }
    if message.thinking_tokens is not None:
        final_usage["output_tokens_details"] = {"thinking_tokens": message.thinking_tokens}
    delta = {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence, "stop_details": None}
    yield _event("message_delta", delta=delta, usage=final_usage)
    yield _event("message_stop")


def _event(kind: str, *, token: bool = False, **fields: Any) -> SseEvent:
    return SseEvent({"type": kind, **fields}, event=kind, token=token)


def _delta(block: Block, piece: str) -> dict[str, Any]:
    if block.type == "text":
        return {"type": "text_delta", "text": piece}
    if block.type == "thinking":
        return {"type": "thinking_delta", "thinking": piece}
    return {"type": "input_json_delta", "partial_json": piece}
