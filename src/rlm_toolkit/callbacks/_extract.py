"""Turn a GenAI span (plus the in-process payload, when there is one) into callback arguments.

Pure functions of their inputs; no callback is called here. Content comes from the
:class:`~rlm_toolkit.genai._context.Payload` when the producer is in this process, else from the
span's captured ``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON, else it is ``""``.

The payload's typed fields read here: messages, ``request`` and ``response`` (inference and
``invoke_agent``: the run's result object), ``tool_input`` / ``tool_output`` (``execute_tool``),
``error`` and ``token``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes, exception_attributes
from opentelemetry.trace import StatusCode, format_span_id
from opentelemetry.util.types import Attributes

from rlm_toolkit import attributes as rlm
from rlm_toolkit.callbacks._events import (
    ABSENT,
    Failed,
    LLMEnd,
    LLMStart,
    RunEnd,
    RunStart,
    SpanEnd,
    SpanEvent,
    ToolEnd,
    ToolStart,
)
from rlm_toolkit.callbacks._types import LLMResponse, Usage
from rlm_toolkit.genai import Payload

_OP = GA.GenAiOperationNameValues
LLM_OPERATIONS = frozenset(
    op.value for op in (_OP.CHAT, _OP.TEXT_COMPLETION, _OP.GENERATE_CONTENT, _OP.EMBEDDINGS)
)
TOOL_OPERATION = _OP.EXECUTE_TOOL.value
RUN_OPERATION = _OP.INVOKE_AGENT.value
_EXCEPTION_EVENT = "exception"


class SpanError(Exception):
    """An error known only from telemetry (another process or instrumentation made the span,
    or a replayed trace): ``on_error`` / ``on_retry`` get one instead of the real exception.

    ``error_type`` is the span's ``error.type`` (or the exception event's type), ``message``
    the recorded exception message or status description (``""`` when none)::

        def on_error(self, error, **kwargs):
            if isinstance(error, SpanError):  # from rlm_toolkit.callbacks
                print("remote failure:", error.error_type)
    """

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.message = message

    def __reduce__(self) -> tuple[type[SpanError], tuple[str, str]]:  # pickles with both fields
        return (SpanError, (self.error_type, self.message))


#: ``gen_ai.operation.name`` -> ``"llm"``, ``"tool"`` or ``"run"`` (absent: not a span
#: callbacks care about). A table, so the processors look a kind up without a call.
KINDS: dict[object, str] = {
    **dict.fromkeys(LLM_OPERATIONS, "llm"),
    TOOL_OPERATION: "tool",
    RUN_OPERATION: "run",
}


def kind(operation: object) -> str | None:
    """``"llm"``, ``"tool"``, ``"run"`` or ``None`` (not a span callbacks care about)."""
    return KINDS.get(operation) if isinstance(operation, str) else None


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    return 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def common(span: ReadableSpan, attrs: Attributes, operation: str) -> dict[str, Any]:
    """Keywords every event of ``span`` carries."""
    attrs = attrs or {}
    parent = span.parent
    return {
        "operation": operation,
        "model": _str(attrs.get(GA.GEN_AI_REQUEST_MODEL)) or _str(attrs.get(GA.GEN_AI_RESPONSE_MODEL)),
        "run_id": format_span_id(span.context.span_id) if span.context is not None else None,
        "parent_run_id": format_span_id(parent.span_id) if parent is not None else None,
        "span": span,
        "start_time": _seconds(span.start_time),
    }


# -- messages -------------------------------------------------------------------------------


def _json_list(value: object) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [m for m in value if isinstance(m, Mapping)]  # type: ignore[misc]
    return []


def messages(
    payload_messages: list[dict[str, Any]] | None, attrs: Attributes, key: str
) -> list[dict[str, Any]]:
    if payload_messages is not None:
        return payload_messages
    return _json_list((attrs or {}).get(key))


def message_text(message: Mapping[str, Any]) -> str:
    parts = message.get("parts")
    if isinstance(parts, Sequence) and not isinstance(parts, str):
        texts = [
            p["content"]
            for p in parts
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("content"), str)
        ]
        return "\n".join(texts)
    content = message.get("content")  # tolerate the older {"role", "content"} shape
    return content if isinstance(content, str) else ""


def last_user_text(msgs: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(msgs):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(msgs[-1]) if msgs else ""


def _request_text(payload: Payload | None) -> str:
    """Prompt of calls whose input is not messages (embeddings, legacy completions)."""
    request = payload.request if payload is not None else None
    if not request:
        return ""
    for key in ("input", "prompt"):
        value = request.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    return ""


def prompt_of(payload: Payload | None, attrs: Attributes) -> tuple[str, list[dict[str, Any]]]:
    msgs = messages(payload.input_messages if payload else None, attrs, GA.GEN_AI_INPUT_MESSAGES)
    return (last_user_text(msgs) if msgs else _request_text(payload)), msgs


# -- results --------------------------------------------------------------------------------


def _tool_calls(output: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for message in output[:1]:
        for part in message.get("parts") or ():
            if isinstance(part, Mapping) and part.get("type") == "tool_call":
                calls.append(
                    {"id": part.get("id"), "name": part.get("name"), "arguments": part.get("arguments")}
                )
    return calls


def _is_count(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _usage(attrs: Mapping[str, Any], raw: Any) -> Usage:
    prompt = attrs.get(GA.GEN_AI_USAGE_INPUT_TOKENS)
    completion = attrs.get(GA.GEN_AI_USAGE_OUTPUT_TOKENS)
    if not _is_count(prompt) and not _is_count(completion) and raw is not None:
        usage = getattr(raw, "usage", None)  # a raw SDK object without usage attributes on the span
        prompt = getattr(usage, "prompt_tokens", None)
        if prompt is None:
            prompt = getattr(usage, "input_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if completion is None:
            completion = getattr(usage, "output_tokens", None)
    if not _is_count(prompt) and not _is_count(completion):
        return Usage(known=False)  # not reported: zeros for arithmetic, but not a measured 0
    p, c = _int(prompt), _int(completion)
    return Usage(
        prompt_tokens=p,
        completion_tokens=c,
        total_tokens=p + c,
        cached_tokens=_int(attrs.get(GA.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
        reasoning_tokens=_int(attrs.get(GA.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)),
    )


def _cost(attrs: Mapping[str, Any], model: str | None, usage: Usage) -> float | None:
    cost = attrs.get(rlm.GEN_AI_USAGE_COST)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return float(cost)
    if not usage.known:
        return None  # an estimate from zero tokens would claim the call was free
    from rlm_toolkit.pricing import estimate_cost

    return estimate_cost(
        model,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_input_tokens=usage.cached_tokens,
    )


def llm_response(span: ReadableSpan, payload: Payload | None) -> LLMResponse:
    attrs: Mapping[str, Any] = span.attributes or {}
    output = messages(payload.output_messages if payload else None, attrs, GA.GEN_AI_OUTPUT_MESSAGES)
    raw = payload.response if payload is not None else None
    reasons = attrs.get(GA.GEN_AI_RESPONSE_FINISH_REASONS)
    finish = (
        reasons[0] if isinstance(reasons, Sequence) and not isinstance(reasons, str) and reasons else None
    )
    if finish is None and output:
        finish = _str(output[0].get("finish_reason"))
    model = _str(attrs.get(GA.GEN_AI_RESPONSE_MODEL)) or _str(attrs.get(GA.GEN_AI_REQUEST_MODEL))
    usage = _usage(attrs, raw)
    return LLMResponse(
        content=message_text(output[0]) if output else "",
        usage=usage,
        model=model,
        finish_reason=_str(finish),
        tool_calls=_tool_calls(output),
        raw=raw,
        cost=_cost(attrs, model, usage),
        id=_str(attrs.get(GA.GEN_AI_RESPONSE_ID)),
    )


def span_error(span: ReadableSpan, payload: Payload | None) -> BaseException:
    if payload is not None and payload.error is not None:
        return payload.error
    for event in reversed(span.events):
        if event.name == _EXCEPTION_EVENT:
            ev: Mapping[str, Any] = event.attributes or {}
            return SpanError(
                str(ev.get(exception_attributes.EXCEPTION_TYPE) or "Exception"),
                str(ev.get(exception_attributes.EXCEPTION_MESSAGE) or ""),
            )
    attrs: Mapping[str, Any] = span.attributes or {}
    description = span.status.description or ""
    return SpanError(str(attrs.get(error_attributes.ERROR_TYPE) or "Error"), description)


def failed(span: ReadableSpan) -> bool:
    return span.status.status_code is StatusCode.ERROR


def start_event(span: ReadableSpan, payload: Payload | None, operation: str) -> SpanEvent:
    """The event of the start of a span of a known kind."""
    attrs = span.attributes
    kw = common(span, attrs, operation)
    which = kind(operation)
    if which == "llm":
        prompt, msgs = prompt_of(payload, attrs)
        params = dict(payload.request) if payload is not None and payload.request else {}
        return LLMStart(**kw, prompt=prompt, messages=msgs, invocation_params=params)
    if which == "tool":
        return ToolStart(
            **kw,
            tool_name=_str((attrs or {}).get(GA.GEN_AI_TOOL_NAME)) or "",
            tool_input=payload.tool_input
            if payload is not None
            else (attrs or {}).get(GA.GEN_AI_TOOL_CALL_ARGUMENTS),
        )
    return RunStart(
        **kw, prompt=prompt_of(payload, attrs)[0], agent_name=_str((attrs or {}).get(GA.GEN_AI_AGENT_NAME))
    )


def end_event(span: ReadableSpan, payload: Payload | None, operation: str) -> SpanEnd:
    """The event of the end of a span: its kind's success event, or :class:`Failed`."""
    attrs: Mapping[str, Any] = span.attributes or {}
    kw = common(span, attrs, operation)
    kw["end_time"] = _seconds(span.end_time)
    if span.start_time is not None and span.end_time is not None:
        kw["duration_ms"] = (span.end_time - span.start_time) / 1e6
    else:
        kw["duration_ms"] = None
    which = kind(operation)
    if failed(span):
        return Failed(
            **kw,
            error=span_error(span, payload),
            error_type=_str(attrs.get(error_attributes.ERROR_TYPE)),
            attempts=_int(attrs.get(rlm.RLM_REQUEST_ATTEMPTS)) or None,
            tool_name=(_str(attrs.get(GA.GEN_AI_TOOL_NAME)) or "") if which == "tool" else ABSENT,
        )
    if which == "llm":
        return LLMEnd(
            **kw,
            response=llm_response(span, payload),
            attempts=_int(attrs.get(rlm.RLM_REQUEST_ATTEMPTS)) or None,
        )
    if which == "tool":
        return ToolEnd(
            **kw,
            tool_name=_str(attrs.get(GA.GEN_AI_TOOL_NAME)) or "",
            tool_output=payload.tool_output if payload is not None else attrs.get(GA.GEN_AI_TOOL_CALL_RESULT),
        )
    result = payload.response if payload is not None else None
    if result is None:
        output = messages(payload.output_messages if payload else None, attrs, GA.GEN_AI_OUTPUT_MESSAGES)
        result = message_text(output[0]) if output else None
    return RunEnd(**kw, result=result, error=None)


# -- point events (log records and span events) ---------------------------------------------


def retry_fields(attrs: Mapping[str, Any], error: BaseException | None) -> dict[str, Any]:
    """The fields of a :class:`Retry` event, from the ``rlm.retry`` attributes."""
    from opentelemetry.semconv.attributes import http_attributes

    if error is None and attrs.get(error_attributes.ERROR_TYPE) is not None:
        error = SpanError(str(attrs[error_attributes.ERROR_TYPE]))
    return {
        "attempt": _int(attrs.get(rlm.RLM_RETRY_ATTEMPT)),
        # The callback argument keeps its tutorial name; the value is the SDK's max_retries
        # (older recordings carry it under rlm.retry.max_attempts).
        "max_attempts": _int(attrs.get(rlm.RLM_RETRY_MAX_RETRIES, attrs.get(rlm.RLM_RETRY_MAX_ATTEMPTS_OLD))),
        "error": error,
        "delay_s": attrs.get(rlm.RLM_RETRY_DELAY),
        "retry_after_s": attrs.get(rlm.RLM_RETRY_AFTER),
        "status_code": attrs.get(http_attributes.HTTP_RESPONSE_STATUS_CODE),
        "error_type": _str(attrs.get(error_attributes.ERROR_TYPE)),
    }
