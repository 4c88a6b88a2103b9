"""Pure request extractors for ``messages.create``/``stream``/``parse``/``count_tokens``:
call kwargs -> span attributes, and request content -> the conventions' message shape.

Parameters come from the kwargs the user passed (a walk over the few kwargs given, not over
the table). anthropic 1.17+ has no ``temperature``/``top_p``/``top_k`` arguments any more: they
reach the API through ``extra_body``, which the SDK merges over the body, so ``extra_body``
entries are read too and win. Nothing here imports ``anthropic``: its "not given" sentinels are
recognised by type name and module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.attributes import RLM_ANTHROPIC_THINKING_BUDGET, RLM_ANTHROPIC_THINKING_TYPE

Converter = Callable[[Any], Any]

_SENTINEL_NAMES: Final = frozenset({"NotGiven", "Omit"})


def is_given(value: Any) -> bool:
    """False for the SDK's ``NOT_GIVEN``/``omit`` placeholders (matched without importing it)."""
    cls = type(value)
    return not (cls.__name__ in _SENTINEL_NAMES and cls.__module__.startswith("anthropic"))


def _identity(value: Any) -> Any:
    return value


def _number(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stop(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _stream(value: Any) -> Any:
    return True if value is True else None


#: kwarg name -> (attribute key, converter); converters return None to skip the value.
PARAMS: Final[Mapping[str, tuple[str, Converter]]] = {
    "max_tokens": (GA.GEN_AI_REQUEST_MAX_TOKENS, _count),
    "temperature": (GA.GEN_AI_REQUEST_TEMPERATURE, _number),
    "top_p": (GA.GEN_AI_REQUEST_TOP_P, _number),
    "top_k": (GA.GEN_AI_REQUEST_TOP_K, _number),
    "stop_sequences": (GA.GEN_AI_REQUEST_STOP_SEQUENCES, _stop),
    "stream": (GA.GEN_AI_REQUEST_STREAM, _stream),
}


def _thinking(value: Any, attrs: dict[str, Any]) -> None:
    thinking = as_mapping(value)
    if thinking is None:
        return
    kind = thinking.get("type")
    if isinstance(kind, str):
        attrs[RLM_ANTHROPIC_THINKING_TYPE] = kind
    budget = _count(thinking.get("budget_tokens"))
    if budget is not None:
        attrs[RLM_ANTHROPIC_THINKING_BUDGET] = budget


def _walk(source: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    for name, value in source.items():
        if value is None or not is_given(value):
            continue
        param = PARAMS.get(name)
        if param is not None:
            key, convert = param
            converted = convert(value)
            if converted is not None:
                attrs[key] = converted
        elif name == "thinking":
            _thinking(value, attrs)


def request_attributes(kwargs: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``base`` plus the request parameters present in ``kwargs`` (and its ``extra_body``):
    ``gen_ai.request.{max_tokens, temperature, top_p, top_k, stop_sequences, stream}`` and the
    thinking type and budget. ``messages.stream()`` passes no ``stream`` kwarg: the wiring adds
    ``gen_ai.request.stream`` for it. Returns ``base`` (updated in place)."""
    _walk(kwargs, base)
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        _walk(extra, base)
    return base


def request_model(kwargs: Mapping[str, Any]) -> str | None:
    """The ``model`` of the call (``extra_body`` wins, as in the body the SDK sends)."""
    extra = kwargs.get("extra_body")
    model = extra.get("model") if isinstance(extra, Mapping) else None
    model = model if model is not None else kwargs.get("model")
    return model if isinstance(model, str) and model else None


# -- content: request messages in the conventions' shape ------------------------------------


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` as a mapping: itself, or an SDK object's ``model_dump()``; else ``None``."""
    if isinstance(value, Mapping):
        return value
    if value is None or isinstance(value, (str, bytes, int, float, list, tuple)):
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump()
        return dumped if isinstance(dumped, Mapping) else None
    return None


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _tool_result(block: Mapping[str, Any]) -> dict[str, Any]:
    content = block.get("content")
    if isinstance(content, list):
        texts = [b.get("text") for b in map(as_mapping, content) if b is not None and b.get("type") == "text"]
        content = texts[0] if len(texts) == 1 else texts
    return {"type": "tool_call_response", "id": block.get("tool_use_id"), "response": content}


def block_part(block: Any) -> dict[str, Any] | None:
    """One content block (request or response, dict or SDK object) as a message part."""
    if isinstance(block, str):
        return _text(block)
    item = as_mapping(block)
    if item is None:
        return None
    kind = item.get("type")
    if kind == "text":
        return _text(item.get("text") or "")
    if kind in ("tool_use", "server_tool_use"):
        return {
            "type": "tool_call",
            "id": item.get("id"),
            "name": item.get("name"),
            "arguments": item.get("input"),
        }
    if kind == "tool_result":
        return _tool_result(item)
    if kind == "thinking":
        return {"type": "reasoning", "content": item.get("thinking") or ""}
    return {"type": str(kind)}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None or not is_given(content):
        return []
    if isinstance(content, str):
        return [_text(content)]
    parts: list[dict[str, Any]] = []
    if isinstance(content, (list, tuple)):
        for block in content:
            part = block_part(block)
            if part is not None:
                parts.append(part)
    return parts


def input_messages(messages: Any) -> list[dict[str, Any]]:
    """``messages`` -> ``gen_ai.input.messages`` (tool results stay in the user turn that
    carries them, as ``tool_call_response`` parts; thinking blocks are ``reasoning`` parts)."""
    out: list[dict[str, Any]] = []
    if not isinstance(messages, (list, tuple)):
        return out
    for message in messages:
        item = as_mapping(message)
        if item is not None:
            out.append({"role": item.get("role"), "parts": _parts(item.get("content"))})
    return out


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    """``system`` (a string or text blocks) -> ``gen_ai.system_instructions``."""
    parts = _parts(system)
    return parts or None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """``tools`` -> ``gen_ai.tool.definitions``: client tools (``input_schema`` as
    ``parameters``) and server tools (their ``type``, e.g. ``web_search_20250305``)."""
    if not isinstance(tools, (list, tuple)):
        return None
    out: list[dict[str, Any]] = []
    for tool in tools:
        item = as_mapping(tool)
        if item is None:
            continue
        entry: dict[str, Any] = {"type": item.get("type") or "function", "name": item.get("name")}
        if item.get("description") is not None:
            entry["description"] = item["description"]
        if item.get("input_schema") is not None:
            entry["parameters"] = item["input_schema"]
        out.append(entry)
    return out or None


def reasoning_effort(kwargs: Mapping[str, Any]) -> str | None:
    """``output_config={"effort": ...}`` (``extra_body`` wins) -> the effort level, or None."""
    value: Any = None
    for source in (kwargs, kwargs.get("extra_body")):
        if isinstance(source, Mapping):
            config = as_mapping(source.get("output_config"))
            if config is not None and isinstance(config.get("effort"), str):
                value = config["effort"]
    return value if isinstance(value, str) and value else None
