"""Callbacks: in-process consumers of rlm-toolkit's OpenTelemetry telemetry.

A :class:`BaseCallback` is fed by real SDK processors: :class:`CallbackSpanProcessor` turns
GenAI span start/end into ``on_llm_start`` / ``on_llm_end`` / ``on_error`` / ``on_tool_*`` /
``on_run_*``, and :class:`CallbackLogRecordProcessor` turns event records into ``on_retry``
and ``on_token``. Both run callbacks synchronously on the app's thread (that
is what streaming UIs and latency timers need). To keep slow callbacks off the app's thread,
use :class:`CallbackSpanExporter` behind a ``BatchSpanProcessor``.
"""

from __future__ import annotations

from rlm_toolkit.callbacks._base import AsyncBaseCallback, BaseCallback
from rlm_toolkit.callbacks._console import ConsoleCallback
from rlm_toolkit.callbacks._exporter import CallbackSpanExporter
from rlm_toolkit.callbacks._extract import SpanError
from rlm_toolkit.callbacks._file_log import FileLogCallback
from rlm_toolkit.callbacks._log_processor import CallbackLogRecordProcessor
from rlm_toolkit.callbacks._metrics import MetricsCallback
from rlm_toolkit.callbacks._span_processor import CallbackSpanProcessor
from rlm_toolkit.callbacks._streaming import StreamingCallback
from rlm_toolkit.callbacks._types import LLMResponse, Usage

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
