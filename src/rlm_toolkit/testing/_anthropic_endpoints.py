"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: the Messages API offline.

The demo model (or a scripted reply) answers as on the OpenAI side: the request's ``system``
and ``messages`` are read as a chat conversation (text blocks joined, ``tool_result`` blocks as
tool messages), so the same prompt gives the same words on both APIs and a recursive run can be
played through either. A request with ``thinking`` enabled gets a deterministic thinking block
first; scripted tool calls become ``tool_use`` blocks (``stop_reason`` ``tool_use``).
``cache_control`` breakpoints are honoured (``_anthropic_cache``): cache writes and hits show in
the usage as the API reports them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._anthropic_cache import account
from rlm_toolkit.testing._anthropic_wire import Block, Message, events, message_json
from rlm_toolkit.testing._wire import Answer, ApiError, Call, tool_call_id


def _field_required(name: str) -> ApiError:
    return ApiError(400, f"{name}: Field required")


def _text_of(content: Any, name: str) -> str:
    """The text of a ``system`` or message ``content``: a string or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _model.content_text([b for b in content if isinstance(b, Mapping) and b.get("type") == "text"])
    raise ApiError(400, f"{name}: Input should be a valid string or a list of content blocks")


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request as chat-style messages (``system`` first), what the demo model reads."""
    raw = body.get("messages")
    if raw is None:
        raise _field_required("messages")
    if not isinstance(raw, list):
        raise ApiError(400, "messages: Input should be a valid list")
    chat: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        chat.append({"role": "system", "content": _text_of(system, "system")})
    for index, message in enumerate(raw):
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise ApiError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            if isinstance(block, Mapping) and block.get("type") == "tool_result":
                result = block.get("content")
                text = result if isinstance(result, str) else _text_of(result or [], "tool_result")
                chat.append({"role": "tool", "content": text})
        for block in blocks:
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                chat.append({"role": "assistant", "content": json.dumps(block.get("input"), sort_keys=True)})
        text = _text_of(content, f"messages.{index}.content")
        if text or not blocks:
            chat.append({"role": message["role"], "content": text})
    return chat


def input_tokens(body: Mapping[str, Any], chat: list[dict[str, Any]]) -> int:
    """Input tokens of a request, the same for ``create`` and ``count_tokens``."""
    tools = body.get("tools")
    return _model.prompt_tokens(chat, [json.dumps(tools, sort_keys=True)] if tools else [])


def _thinking_budget(body: Mapping[str, Any]) -> int | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise ApiError(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    return budget


def _thinking_text(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    shown = prompt if len(prompt) <= 80 else prompt[:77].rstrip() + "..."
    return f"The user wrote: {shown} I will answer from the prompt alone, the same way every time."


def _cut(text: str, max_tokens: int, stop: list[str]) -> tuple[str, str, str | None]:
    """(text, stop_reason, stop_sequence) after the first stop sequence, then ``max_tokens``."""
    cut, matched = len(text), None
    for marker in stop:
        found = text.find(marker) if marker else -1
        if 0 <= found < cut:
            cut, matched = found, marker
    text = text[:cut]
    tokens = _model.tokenize(text)
    if len(tokens) > max_tokens:
        return "".join(tokens[:max_tokens]), "max_tokens", None
    return text, ("stop_sequence" if matched is not None else "end_turn"), matched


def _stop_sequences(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop_sequences")
    if stop is None:
        return []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise ApiError(400, "stop_sequences: Input should be a valid list of strings")


def _max_tokens(body: Mapping[str, Any]) -> int:
    value = body.get("max_tokens")
    if value is None:
        raise _field_required("max_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    return value


def _tool_input(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        raise ApiError(500, "The scripted tool call's arguments are not JSON.") from None


def plan(call: Call) -> tuple[Message, dict[int, list[str]]]:
    """The answer to a Messages request: the message and each block's streamed fragments."""
    body = call.body
    model = call.model()
    max_tokens = _max_tokens(body)
    stop = _stop_sequences(body)
    budget = _thinking_budget(body)
    chat = chat_messages(body)
    reply = call.next_reply(chat, 0)
    blocks: list[Block] = []
    pieces: dict[int, list[str]] = {}
    output = 0
    thinking_tokens = None
    if budget is not None:
        thought = _thinking_text(_model.last_user_text(chat))
        signature = f"offline-{_model.stable_hash(thought):08x}"
        pieces[len(blocks)] = _model.tokenize(thought)
        blocks.append(Block("thinking", text=thought, signature=signature))
        thinking_tokens = output = len(pieces[len(blocks) - 1])
    stop_reason, stop_sequence = "end_turn", None
    if reply.text is not None:
        text, stop_reason, stop_sequence = _cut(reply.text, max_tokens, stop)
        pieces[len(blocks)] = _model.tokenize(text)
        blocks.append(Block("text", text=text))
        output += len(pieces[len(blocks) - 1])
    if reply.tool_calls and stop_reason == "end_turn":
        for index, tool in enumerate(reply.tool_calls):
            pieces[len(blocks)] = _model.tokenize(tool.arguments)
            blocks.append(
                Block(
                    "tool_use",
                    id=tool_call_id(tool, index, prefix="toolu_"),
                    name=tool.name,
                    input=_tool_input(tool.arguments),
                    input_json=tool.arguments,
                )
            )
            output += _model.count_tokens(tool.name) + len(pieces[len(blocks) - 1])
        stop_reason = "tool_use"
    total = input_tokens(body, chat)
    cache = account(call.script, model, body, total)
    message = Message(
        id=call.new_id("msg_offline"),
        model=model,
        blocks=tuple(blocks),
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=total - sum(cache),
        output_tokens=output,
        thinking_tokens=thinking_tokens,
        cache=cache,
    )
    return message, pieces


def create(call: Call) -> Answer:
    message, pieces = plan(call)
    if call.streaming:
        return Answer(events=events(message, pieces), done=False)
    return Answer(body=message_json(message))


def count_tokens(call: Call) -> Answer:
    call.model()
    return Answer(body={"input_tokens": input_tokens(call.body, chat_messages(call.body))})
