"""Content capture policy: whether prompt/completion text may leave the process, and how.

Off by default. ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (or the ``capture_content``
argument of ``instrument()``) accepts ``true``/``false`` and the experimental GenAI modes
``span_only``/``event_only``/``span_and_event``/``no_content`` (case-insensitive). ``true`` means
``span_and_event``. An unknown environment value is logged at debug level and means off; an
unknown value passed in code raises ``ValueError``.

Text parts longer than ``RLM_CAPTURE_MAX_LENGTH`` characters (default 16384) are truncated part
by part, so the serialised JSON always stays valid.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Final

from rlm_toolkit.environment_variables import (
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
    RLM_CAPTURE_MAX_LENGTH,
)

_log = logging.getLogger("rlm_toolkit")

DEFAULT_MAX_LENGTH: Final = 16384


@dataclass(frozen=True)
class ContentMode:
    """Where captured content goes: span attributes, the content event, both or neither."""

    on_span: bool = False
    on_event: bool = False

    @property
    def any(self) -> bool:
        return self.on_span or self.on_event


_MODES: Final[dict[str, ContentMode]] = {
    "true": ContentMode(True, True),
    "span_and_event": ContentMode(True, True),
    "span_only": ContentMode(True, False),
    "event_only": ContentMode(False, True),
    "false": ContentMode(),
    "no_content": ContentMode(),
}
ACCEPTED_VALUES: Final = tuple(_MODES)


def resolve_content_mode(value: bool | str | ContentMode | None = None) -> ContentMode:
    """The capture mode from code (``value``) or, when ``value`` is None, from the environment."""
    if isinstance(value, ContentMode):
        return value
    if isinstance(value, bool):
        return _MODES["true" if value else "false"]
    if value is None:
        raw = os.environ.get(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
        if raw is None or not raw.strip():
            return ContentMode()
        mode = _MODES.get(raw.strip().lower())
        if mode is None:
            _log.debug(
                "rlm_toolkit: ignoring %s=%r (accepted: %s); content capture stays off",
                OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
                raw,
                ", ".join(ACCEPTED_VALUES),
            )
            return ContentMode()
        return mode
    if isinstance(value, str):
        mode = _MODES.get(value.strip().lower())
        if mode is not None:
            return mode
    raise ValueError(f"capture_content must be a bool or one of {', '.join(ACCEPTED_VALUES)}; got {value!r}")


def resolve_max_length() -> int:
    raw = os.environ.get(RLM_CAPTURE_MAX_LENGTH)
    if raw is None:
        return DEFAULT_MAX_LENGTH
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        _log.debug("rlm_toolkit: ignoring %s=%r; using %d", RLM_CAPTURE_MAX_LENGTH, raw, DEFAULT_MAX_LENGTH)
        return DEFAULT_MAX_LENGTH
    return value


# Keys of a message part whose string value is free text that may be long.
_TEXT_KEYS: Final = ("content", "arguments", "response")


def truncate_parts(parts: list[Any], max_length: int) -> list[Any]:
    """``parts`` with every long text value cut to ``max_length``; copies only what it changes."""
    out: list[Any] | None = None
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        cut: dict[str, Any] | None = None
        for key in _TEXT_KEYS:
            value = part.get(key)
            if isinstance(value, str) and len(value) > max_length:
                if cut is None:
                    cut = dict(part)
                cut[key] = value[:max_length]
        if cut is not None:
            if out is None:
                out = list(parts)
            out[j] = cut
    return parts if out is None else out


def truncate_messages(messages: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Copy of ``messages`` (semconv shape) with long text parts truncated; input never mutated
    (the in-process payload keeps the full text)."""
    out: list[dict[str, Any]] | None = None
    for i, message in enumerate(messages):
        parts = message.get("parts")
        if not parts:
            continue
        new_parts = truncate_parts(parts, max_length)
        if new_parts is not parts:
            if out is None:
                out = list(messages)
            out[i] = {**message, "parts": new_parts}
    return messages if out is None else out


def to_json(value: Any) -> str:
    """Compact JSON; objects the encoder does not know become their ``str``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
