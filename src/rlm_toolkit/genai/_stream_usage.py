"""The opt-in stream usage setting: argument, else ``RLM_STREAM_USAGE``, read at instrument time.

With it on, streamed chat requests that do not say ``stream_options.include_usage`` get it, so
the span and the metrics carry token usage (and cost); the usage-only chunk the server then
adds is consumed by the stream proxy and never reaches the app (see ``genai._stream``).
"""

from __future__ import annotations

import logging
import os

from rlm_toolkit.environment_variables import RLM_STREAM_USAGE

_log = logging.getLogger(__name__)
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def resolve_stream_usage(value: bool | None = None) -> bool:
    """``value`` when given (a bool; ``ValueError`` otherwise), else ``RLM_STREAM_USAGE``
    (lenient: an unknown value is logged and means off)."""
    if value is not None:
        if not isinstance(value, bool):
            raise ValueError(f"stream_usage={value!r}: expected True or False")
        return value
    raw = os.environ.get(RLM_STREAM_USAGE, "").strip().lower()
    if raw in TRUE_VALUES:
        return True
    if raw not in FALSE_VALUES:
        _log.warning(
            "%s=%r is not a boolean (1/0, true/false); stream usage stays off", RLM_STREAM_USAGE, raw
        )
    return False
