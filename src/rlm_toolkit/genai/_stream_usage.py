"""The opt-in switches read at instrument time: argument, else an environment variable.

* Stream usage (``RLM_STREAM_USAGE``): streamed chat requests that do not say
  ``stream_options.include_usage`` get it, so the span and the metrics carry token usage (and
  cost); the usage-only chunk the server then adds is consumed by the stream proxy and never
  reaches the app (see ``genai._stream``).
* Token export (``RLM_EXPORT_TOKEN_EVENTS``): streamed tokens also become exported
  ``rlm.llm.token`` records; by default they reach only in-process consumers.
"""

from __future__ import annotations

import logging
import os

from rlm_toolkit.environment_variables import RLM_EXPORT_TOKEN_EVENTS, RLM_STREAM_USAGE

_log = logging.getLogger(__name__)
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def _resolve(value: bool | None, argument: str, variable: str, what: str) -> bool:
    """``value`` when given (a bool; ``ValueError`` otherwise), else the environment variable
    (lenient: an unknown value is logged and means off)."""
    if value is not None:
        if not isinstance(value, bool):
            raise ValueError(f"{argument}={value!r}: expected True or False")
        return value
    raw = os.environ.get(variable, "").strip().lower()
    if raw in TRUE_VALUES:
        return True
    if raw not in FALSE_VALUES:
        _log.warning("%s=%r is not a boolean (1/0, true/false); %s stays off", variable, raw, what)
    return False


def resolve_stream_usage(value: bool | None = None) -> bool:
    """Stream usage on? ``value`` when given, else ``RLM_STREAM_USAGE``."""
    return _resolve(value, "stream_usage", RLM_STREAM_USAGE, "stream usage")


def resolve_export_tokens(value: bool | None = None) -> bool:
    """Export token events as records? ``value`` when given, else ``RLM_EXPORT_TOKEN_EVENTS``."""
    return _resolve(value, "export_token_events", RLM_EXPORT_TOKEN_EVENTS, "token export")
