"""``POST /v1/chat/completions``: the ``chat.completion`` object and its SSE chunk stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._wire import (
    Answer,
    ApiError,
    Call,
    Planned,
    SseEvent,
    chat_usage,
    plan,
    require_list,
    tool_call_id,
)

_FINGERPRINT = "fp_offline"


def _tool_call_json(call: Any, index: int) -> dict[str, Any]:
    return {
        "id": tool_call_id(call, index),
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def create(call: Call) -> Answer:
    model = call.model()
    messages = require_list(call.body, "messages")
    n = call.int_param("n", minimum=1) or 1
    if n > 128:
        raise ApiError(400, "Invalid value for 'n': must be <= 128.", param="n")
    max_tokens = call.int_param("max_completion_tokens", "max_tokens")
    stop = call.stop_param()
    tools = call.body.get("tools")
    extra = [json.dumps(tools, sort_keys=True)] if tools else []
    prompt_tokens = _model.prompt_tokens(messages, extra)
    choices = [plan(call.next_reply(messages, i), max_tokens=max_tokens, stop=stop) for i in range(n)]
    usage = chat_usage(prompt_tokens, sum(c.completion_tokens for c in choices))
    head = {"id": call.new_id("chatcmpl-"), "created": call.created, "model": model}
    if call.streaming:
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        with_usage = usage if include_usage and not call.omit_usage else None
        return Answer(events=_stream(head, choices, with_usage, include_usage))
    return Answer(
        body={
            **head,
            "object": "chat.completion",
            "choices": [_choice(i, c) for i, c in enumerate(choices)],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _choice(index: int, choice: Planned) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text,
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls:
        message["tool_calls"] = [_tool_call_json(c, i) for i, c in enumerate(choice.tool_calls)]
    return {"index": index, "message": message, "logprobs": None, "finish_reason": choice.finish_reason}


def _stream(
    head: dict[str, Any], choices: list[Planned], usage: dict[str, Any] | None, include_usage: bool
) -> Iterator[SseEvent]:
    base = {
        **head,
        "object": "chat.completion.chunk",
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**base, "choices": [choice]}

    for index, choice in enumerate(choices):
        first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if choice.text is None:
            first["content"] = None
        yield SseEvent(chunk(index, first))
        for token in _model.tokenize(choice.text or ""):
            yield SseEvent(chunk(index, {"content": token}), token=True)
        for call_index, call in enumerate(choice.tool_calls):
            opening = {
                "index": call_index,
                "id": tool_call_id(call, call_index),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield SseEvent(chunk(index, {"tool_calls": [opening]}), token=True)
            for fragment in _model.tokenize(call.arguments):
                fragment_delta = {"index": call_index, "function": {"arguments": fragment}}
                yield SseEvent(chunk(index, {"tool_calls": [fragment_delta]}), token=True)
        yield SseEvent(chunk(index, {}, choice.finish_reason))
    if usage is not None:
        yield SseEvent({**base, "choices": [], "usage": usage})
