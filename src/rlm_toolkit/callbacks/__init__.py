"""Callbacks: in-process consumers of rlm-toolkit's OpenTelemetry telemetry.

A :class:`BaseCallback` is fed by real SDK processors: :class:`CallbackSpanProcessor` turns
GenAI span start/end into ``on_llm_start`` / ``on_llm_end`` / ``on_error`` / ``on_tool_*`` /
``on_run_*``, and :class:`CallbackLogRecordProcessor` turns event records into ``on_retry``
and ``on_token``. Both run callbacks synchronously on the app's thread (that
is what streaming UIs and latency timers need). To keep slow callbacks off the app's thread,
use :class:`CallbackSpanExporter` behind a ``BatchSpanProcessor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlm_toolkit._lazy import lazy_exports

# The light names (a callback's base classes and value types) load with the package; the
# processors and the exporter, which pull in the OpenTelemetry SDK and the dispatch machinery,
# load on first use, so a run that attaches no callback never pays for them.
from rlm_toolkit.callbacks._base import AsyncBaseCallback, BaseCallback
from rlm_toolkit.callbacks._types import LLMResponse, Usage

if TYPE_CHECKING:
    from rlm_toolkit.callbacks._console import ConsoleCallback
    from rlm_toolkit.callbacks._exporter import CallbackSpanExporter
    from rlm_toolkit.callbacks._extract import SpanError
    from rlm_toolkit.callbacks._file_log import FileLogCallback
    from rlm_toolkit.callbacks._log_processor import CallbackLogRecordProcessor
    from rlm_toolkit.callbacks._metrics import MetricsCallback
    from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor
    from rlm_toolkit.callbacks._streaming import StreamingCallback

__all__ = [
    "AsyncBaseCallback",
    "BaseCallback",
    "CallbackLogRecordProcessor",
    "CallbackSpanExporter",
    "CallbackSpanProcessor",
    "ConsoleCallback",
    "FileLogCallback",
    "LLMResponse",
    "MetricsCallback",
    "SpanError",
    "StreamingCallback",
    "Usage",
]

_LAZY = {
    "CallbackLogRecordProcessor": "rlm_toolkit.callbacks._log_processor",
    "CallbackSpanExporter": "rlm_toolkit.callbacks._exporter",
    "CallbackSpanProcessor": "rlm_toolkit.callbacks._span_processor",
    "ConsoleCallback": "rlm_toolkit.callbacks._console",
    "FileLogCallback": "rlm_toolkit.callbacks._file_log",
    "MetricsCallback": "rlm_toolkit.callbacks._metrics",
    "SpanError": "rlm_toolkit.callbacks._extract",
    "StreamingCallback": "rlm_toolkit.callbacks._streaming",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
