"""Shapes shared by the endpoints: what an endpoint gets (:class:`Call`), what it returns
(:class:`Answer` with a JSON body or a stream of :class:`SseEvent`), and the error JSON."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._script import Reply, Script, ToolCall


class ApiError(Exception):
    """An error answered with the real API's JSON: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event; ``token`` events are preceded by the server's ``token_delay``."""

    data: Mapping[str, Any] | str
    event: str | None = None
    token: bool = False


@dataclass
class Answer:
    """A JSON answer (``body``) or a stream (``events``, then ``data: [DONE]`` when ``done``)."""

    body: Any = None
    events: Iterable[SseEvent] | None = None
    done: bool = True
    status: int = 200


@dataclass
class Call:
    """One request as an endpoint sees it."""

    body: dict[str, Any]
    script: Script
    omit_usage: bool = False
    path_param: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def streaming(self) -> bool:
        return self.body.get("stream") is True

    def model(self) -> str:
        model = self.body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "you must provide a model parameter", param="model")
        return model

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{self.script.next_id():024x}"

    def next_reply(self, messages: list[Any], variant: int) -> Reply:
        """The next queued reply, else the demo model's answer to ``messages``."""
        scripted = self.script.pop_reply(self.body)
        return scripted if scripted is not None else Reply(text=_model.reply_for(messages, variant))

    def int_param(self, *names: str, minimum: int = 0) -> int | None:
        for name in names:
            value = self.body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ApiError(
                    400, f"Invalid value for '{name}': expected an integer >= {minimum}.", param=name
                )
            return value
        return None

    def stop_param(self) -> list[str]:
        stop = self.body.get("stop")
        if stop is None:
            return []
        if isinstance(stop, str):
            return [stop]
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            return list(stop)
        raise ApiError(
            400, "Invalid value for 'stop': expected a string or an array of strings.", param="stop"
        )


@dataclass(frozen=True)
class Planned:
    """One choice's final content after limits: text, tool calls, finish reason, token count."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    completion_tokens: int


def plan(reply: Reply, *, max_tokens: int | None, stop: list[str]) -> Planned:
    text = reply.text
    truncated = False
    if text is not None:
        text, truncated = _model.apply_limits(text, max_tokens=max_tokens, stop=stop)
    tokens = _model.count_tokens(text or "")
    if reply.tool_calls and not truncated:
        tokens += sum(
            _model.count_tokens(c.name) + _model.count_tokens(c.arguments) for c in reply.tool_calls
        )
        return Planned(text, reply.tool_calls, "tool_calls", tokens)
    return Planned(text, (), "length" if truncated else "stop", tokens)


def tool_call_id(call: ToolCall, index: int, prefix: str = "call_") -> str:
    if call.id:
        return call.id
    return f"{prefix}{_model.stable_hash(f'{index}:{call.name}:{call.arguments}'):08x}offline"


def chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def require_list(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise ApiError(
            400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    if not isinstance(value, list):
        raise ApiError(400, f"Invalid type for '{name}': expected an array.", param=name, code="invalid_type")
    return value
