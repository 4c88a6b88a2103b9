"""Pure request extractors: SDK call kwargs -> span attributes, request body -> semconv messages.

Request parameters come from the kwargs the user passed (cheap ``dict.get`` on a fixed key
list). Message *content* comes from kwargs only when they are a list/tuple; any other iterable
(e.g. a generator) is read later from the request body the SDK built
(``FinalRequestOptions.json_data``), so the user's iterator reaches the SDK intact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.attributes import openai_attributes as OA

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import RLM_REQUEST_REASONING_EFFORT
from rlm_toolkit.genai._semconv import DEFAULT as DEFAULT_CONVENTIONS
from rlm_toolkit.genai._semconv import Conventions

Converter = Callable[[Any], Any]

# The SDK's "argument not given" sentinels (``NotGiven`` in 1.x+, ``Omit`` in later versions),
# resolved on first use, not at import: importing the instrumentation (e.g. for ``RLM``'s
# provider) must not import ``openai`` itself (~0.4 s); by the first check a call is running,
# so the SDK is imported already. Kept in this module (the extractors are its main callers) so
# one call does not hop to another file per parameter it checks (#17's call-path count).
_SENTINELS: tuple[type, ...] | None = None


def _sentinel_types() -> tuple[type, ...]:
    global _SENTINELS
    types: list[type] = []
    try:
        from openai import _types
    except ImportError:  # pragma: no cover - openai is a dependency
        _SENTINELS = ()
        return ()
    for name in ("NotGiven", "Omit"):
        cls = getattr(_types, name, None)
        if isinstance(cls, type):
            types.append(cls)
    _SENTINELS = tuple(types)
    return _SENTINELS


def is_given(value: Any) -> bool:
    """False for the SDK's ``NOT_GIVEN``/``omit`` placeholders."""
    sentinels = _SENTINELS
    if sentinels is None:
        sentinels = _sentinel_types()
    return type(value) not in sentinels


def _identity(value: Any) -> Any:
    return value


def _stop(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _encoding(value: Any) -> Any:
    return (value,) if isinstance(value, str) else None


def _output_type(value: Any) -> Any:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return GA.GenAiOutputTypeValues.TEXT.value
    if kind in ("json_object", "json_schema"):
        return GA.GenAiOutputTypeValues.JSON.value
    if isinstance(value, type):  # .parse(response_format=SomeModel)
        return GA.GenAiOutputTypeValues.JSON.value
    return None


def _choice_count(value: Any) -> Any:
    return value if isinstance(value, int) and value != 1 else None


def _text_format(value: Any) -> Any:
    return _output_type(value.get("format")) if isinstance(value, Mapping) else None


def _reasoning_effort(value: Any) -> Any:
    """``reasoning={"effort": "low", ...}`` (a mapping or the SDK's ``Reasoning``) -> ``"low"``."""
    effort = value.get("effort") if isinstance(value, Mapping) else getattr(value, "effort", None)
    return effort if isinstance(effort, str) and effort else None


def _effort(value: Any) -> Any:
    """Chat Completions' ``reasoning_effort="low"``: the exact string sent."""
    return value if isinstance(value, str) and value else None


#: Table key of ``reasoning.effort``: replaced by the mode's attribute name
#: (:attr:`Conventions.reasoning_level_attribute`) in :func:`request_attributes`.
REASONING_KEY: Final = RLM_REQUEST_REASONING_EFFORT


def _stream(value: Any) -> Any:
    return True if value is True else None


# (kwarg name, attribute key, converter); converters return None to skip. When two kwargs map
# to one key, the later entry wins (``max_completion_tokens`` over the deprecated ``max_tokens``).
_COMMON: Final = (
    ("temperature", GA.GEN_AI_REQUEST_TEMPERATURE, _identity),
    ("top_p", GA.GEN_AI_REQUEST_TOP_P, _identity),
    ("service_tier", OA.OPENAI_REQUEST_SERVICE_TIER, _identity),
    ("stream", GA.GEN_AI_REQUEST_STREAM, _stream),
)
_CHAT: Final = (
    *_COMMON,
    ("max_tokens", GA.GEN_AI_REQUEST_MAX_TOKENS, _identity),
    ("max_completion_tokens", GA.GEN_AI_REQUEST_MAX_TOKENS, _identity),
    ("stop", GA.GEN_AI_REQUEST_STOP_SEQUENCES, _stop),
    ("frequency_penalty", GA.GEN_AI_REQUEST_FREQUENCY_PENALTY, _identity),
    ("presence_penalty", GA.GEN_AI_REQUEST_PRESENCE_PENALTY, _identity),
    ("seed", GA.GEN_AI_REQUEST_SEED, _identity),
    ("n", GA.GEN_AI_REQUEST_CHOICE_COUNT, _choice_count),
    ("reasoning_effort", REASONING_KEY, _effort),
    ("response_format", GA.GEN_AI_OUTPUT_TYPE, _output_type),
)
_RESPONSES: Final = (
    *_COMMON,
    ("max_output_tokens", GA.GEN_AI_REQUEST_MAX_TOKENS, _identity),
    ("text", GA.GEN_AI_OUTPUT_TYPE, _text_format),
    ("text_format", GA.GEN_AI_OUTPUT_TYPE, _output_type),
    ("reasoning", REASONING_KEY, _reasoning_effort),
)
_EMBEDDINGS: Final = (
    ("encoding_format", GA.GEN_AI_REQUEST_ENCODING_FORMATS, _encoding),
    ("dimensions", GA.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, _identity),
)

#: kwarg name -> (attribute key, converter, rank); rank orders kwargs that share a key.
Params = Mapping[str, tuple[str, Converter, int]]


def _params(entries: tuple[tuple[str, str, Converter], ...]) -> Params:
    return {name: (key, convert, rank) for rank, (name, key, convert) in enumerate(entries)}


CHAT_PARAMS: Final = _params(_CHAT)
COMPLETION_PARAMS: Final = _params(_CHAT[:-1])
RESPONSES_PARAMS: Final = _params(_RESPONSES)
EMBEDDINGS_PARAMS: Final = _params(_EMBEDDINGS)


def request_attributes(
    kwargs: Mapping[str, Any],
    params: Params,
    base: dict[str, Any],
    conventions: Conventions = DEFAULT_CONVENTIONS,
) -> dict[str, Any]:
    """``base`` plus the request parameters present in ``kwargs`` (names of ``conventions``).

    Walks the call's kwargs (a chat call passes two or three) rather than the parameter table
    (a dozen lookups that mostly miss).
    """
    attrs = base
    ranks: dict[str, int] = {}
    for name, value in kwargs.items():
        param = params.get(name)
        if param is None or value is None or not is_given(value):
            continue
        key, convert, rank = param
        value = convert(value)
        if value is None or ranks.get(key, -1) > rank:
            continue
        ranks[key] = rank
        if key is REASONING_KEY:
            key = conventions.reasoning_level_attribute
        attrs[key] = value
    return attrs


# -- content: request messages in the conventions' shape ------------------------------------


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` as a mapping: itself, its ``model_dump()`` (SDK pydantic objects users pass
    back, e.g. ``msg.tool_calls`` or ``response.output``), its ``vars()``; else ``None`` (skip).
    """
    if isinstance(value, Mapping):
        return value
    if value is None or isinstance(value, (str, bytes, int, float, list, tuple)):
        return None
    try:
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            dumped = dump()
            return dumped if isinstance(dumped, Mapping) else None
        fields = getattr(value, "__dict__", None)
        if isinstance(fields, Mapping):
            return {k: v for k, v in fields.items() if not k.startswith("_")}
    except Exception as exc:
        contain("reading a request item", exc)
    return None


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or not is_given(content):
        return []
    if isinstance(content, str):
        return [_text(content)]
    parts: list[dict[str, Any]] = []
    if isinstance(content, (list, tuple)):
        for item in content:
            if isinstance(item, str):
                parts.append(_text(item))
            elif (item := as_mapping(item)) is not None:
                kind = item.get("type")
                text = item.get("text")
                if isinstance(text, str) and kind in ("text", "input_text", "output_text"):
                    parts.append(_text(text))
                elif isinstance(text, str):
                    parts.append({"type": str(kind), "content": text})
                else:
                    parts.append({"type": str(kind)})
    return parts


def _tool_call_part(call: Any) -> dict[str, Any] | None:
    call = as_mapping(call)
    if call is None:
        return None
    function = as_mapping(call.get("function")) or {}
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": function.get("name"),
        "arguments": function.get("arguments"),
    }


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat Completions ``messages`` -> ``gen_ai.input.messages``."""
    out: list[dict[str, Any]] = []
    for message in messages or ():
        message = as_mapping(message)
        if message is None:
            continue
        role = message.get("role")
        if role == "tool":
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": message.get("tool_call_id"),
                            "response": _flatten(message.get("content")),
                        }
                    ],
                }
            )
            continue
        parts = _content_parts(message.get("content"))
        for call in message.get("tool_calls") or ():
            part = _tool_call_part(call)
            if part is not None:
                parts.append(part)
        out.append({"role": role, "parts": parts})
    return out


def _flatten(content: Any) -> Any:
    parts = _content_parts(content)
    if len(parts) == 1 and "content" in parts[0]:
        return parts[0]["content"]
    return content if isinstance(content, str) else [p.get("content") for p in parts]


def chat_tools(tools: Any) -> list[dict[str, Any]] | None:
    """Chat ``tools`` -> ``gen_ai.tool.definitions``."""
    if not tools or not is_given(tools):
        return None
    out: list[dict[str, Any]] = []
    for tool in tools:
        tool = as_mapping(tool)
        if tool is None:
            continue
        function = as_mapping(tool.get("function"))
        if isinstance(function, Mapping):
            entry = {"type": tool.get("type", "function"), "name": function.get("name")}
            for key in ("description", "parameters"):
                if function.get(key) is not None:
                    entry[key] = function[key]
            out.append(entry)
        else:  # Responses API shape: flat
            entry = {"type": tool.get("type"), "name": tool.get("name")}
            for key in ("description", "parameters"):
                if tool.get(key) is not None:
                    entry[key] = tool[key]
            out.append(entry)
    return out or None


def responses_input(value: Any) -> list[dict[str, Any]]:
    """Responses API ``input`` -> ``gen_ai.input.messages``."""
    if isinstance(value, str):
        return [{"role": "user", "parts": [_text(value)]}]
    out: list[dict[str, Any]] = []
    for item in value or ():
        item = as_mapping(item)
        if item is None:
            continue
        kind = item.get("type")
        if kind == "function_call_output":
            part = {"type": "tool_call_response", "id": item.get("call_id"), "response": item.get("output")}
            out.append({"role": "tool", "parts": [part]})
        elif kind == "function_call":
            part = {
                "type": "tool_call",
                "id": item.get("call_id"),
                "name": item.get("name"),
                "arguments": item.get("arguments"),
            }
            out.append({"role": "assistant", "parts": [part]})
        elif "role" in item:
            out.append({"role": item.get("role"), "parts": _content_parts(item.get("content"))})
        else:
            out.append({"role": "user", "parts": [{"type": str(kind)}]})
    return out


def completion_prompt(prompt: Any) -> list[dict[str, Any]]:
    """Legacy completions ``prompt`` -> one user message per string prompt."""
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [_text(prompt)]}]
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [_text(p)]} for p in prompt]
    return []


def is_materialised(value: Any) -> bool:
    """True when reading ``value`` cannot consume anything the SDK still needs."""
    return value is None or isinstance(value, (list, tuple, str, Mapping)) or not is_given(value)


# -- opt-in stream usage ---------------------------------------------------------------------

#: Header the SDK's ``with_raw_response``/``with_streaming_response`` set: the app then reads
#: the raw body, where an added usage chunk could not be hidden.
_RAW_RESPONSE_HEADER: Final = "X-Stainless-Raw-Response"


def with_stream_usage(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """``kwargs`` of a chat call with ``stream_options.include_usage`` added, or None when
    there is nothing to add: not a stream, the app already chose (``include_usage`` present,
    true or false), or the app reads the raw response body."""
    if kwargs.get("stream") is not True:
        return None
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping) and is_given(headers) and headers.get(_RAW_RESPONSE_HEADER):
        return None
    options = kwargs.get("stream_options")
    if options is None or not is_given(options):
        added: dict[str, Any] = {"include_usage": True}
    elif isinstance(options, Mapping) and "include_usage" not in options:
        added = {**options, "include_usage": True}
    else:
        return None
    return {**kwargs, "stream_options": added}
