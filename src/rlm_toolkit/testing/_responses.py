"""``POST /v1/responses``: the ``response`` object and its typed SSE event sequence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._wire import Answer, ApiError, Call, Planned, SseEvent, plan, tool_call_id


def _messages(call: Call) -> list[Any]:
    """The request's ``instructions`` and ``input`` as chat-style messages."""
    messages: list[Any] = []
    instructions = call.body.get("instructions")
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    raw = call.body.get("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict):
                raise ApiError(400, "Invalid 'input': expected a string or an array of items.", param="input")
            kind = item.get("type", "message")
            if kind == "function_call_output":
                output = item.get("output")
                messages.append(
                    {"role": "tool", "content": output if isinstance(output, str) else json.dumps(output)}
                )
            elif kind == "function_call":
                messages.append({"role": "assistant", "content": str(item.get("arguments", ""))})
            else:
                messages.append({"role": item.get("role", "user"), "content": item.get("content")})
    elif raw is not None:
        raise ApiError(400, "Invalid 'input': expected a string or an array of items.", param="input")
    else:
        raise ApiError(
            400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    return messages


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _items(call: Call, choice: Planned, status: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if choice.text is not None:
        items.append(
            {
                "id": call.new_id("msg_"),
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [_text_part(choice.text)],
            }
        )
    for index, tool in enumerate(choice.tool_calls):
        items.append(
            {
                "id": call.new_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "call_id": tool_call_id(tool, index),
                "name": tool.name,
                "arguments": tool.arguments,
            }
        )
    return items


def create(call: Call) -> Answer:
    model = call.model()
    messages = _messages(call)
    max_tokens = call.int_param("max_output_tokens", minimum=1)
    tools = call.body.get("tools")
    prompt_tokens = _model.prompt_tokens(messages, [json.dumps(tools, sort_keys=True)] if tools else [])
    choice = plan(call.next_reply(messages, 0), max_tokens=max_tokens, stop=[])
    truncated = choice.finish_reason == "length"
    status = "incomplete" if truncated else "completed"
    items = _items(call, choice, status)
    usage = _usage(prompt_tokens, choice.completion_tokens)
    response: dict[str, Any] = {
        "id": call.new_id("resp_"),
        "object": "response",
        "created_at": call.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": call.body.get("instructions"),
        "max_output_tokens": max_tokens,
        "metadata": call.body.get("metadata") or {},
        "model": model,
        "output": items,
        "parallel_tool_calls": call.body.get("parallel_tool_calls", True),
        "previous_response_id": call.body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": call.body.get("store", True),
        "temperature": call.body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": call.body.get("tool_choice", "auto"),
        "tools": tools or [],
        "top_p": call.body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
    }
    if not call.streaming:
        return Answer(body=response)
    final = {**response, "usage": None} if call.omit_usage else response
    return Answer(events=_stream(final), done=False)


def _stream(response: dict[str, Any]) -> Iterator[SseEvent]:
    sequence = 0

    def event(kind: str, **fields: Any) -> SseEvent:
        nonlocal sequence
        data = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        return SseEvent(data, event=kind, token=kind.endswith(".delta"))

    pending = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield event("response.content_part.added", **where, part=_text_part(""))
            for token in _model.tokenize(text):
                yield event("response.output_text.delta", **where, delta=token, logprobs=[])
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part=_text_part(text))
        else:
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            where = {"item_id": item["id"], "output_index": index}
            for fragment in _model.tokenize(item["arguments"]):
                yield event("response.function_call_arguments.delta", **where, delta=fragment)
            yield event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        yield event("response.output_item.done", output_index=index, item=item)
    final_kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    yield event(final_kind, response=response)
