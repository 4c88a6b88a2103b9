"""JSONL file exporters: one OTLP/JSON object per line, for spans, log records and metrics.

All exporters writing to the same path share one writer (one lock, one append-mode file), so
spans, logs and metrics of a process can go to one file without interleaving partial lines.
Each export writes its whole lines in one unbuffered ``write``, so a crash loses at most the
batch being written and a reader never sees half a line from this process -- not even when a
span ended on the same thread (a signal handler, say) exports again in the middle of a write.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from rlm_toolkit._safety import contain
from rlm_toolkit.exporters._clean import clean
from rlm_toolkit.exporters._signals import log_json, metrics_json, span_json


class _Writer:
    """Append-only line writer for one path; shared by every exporter using that path.

    The lock is reentrant: a span ended on a thread that is inside ``write`` holding the lock (a
    signal handler, a callback making an instrumented call) exports back here. (Abandoned
    streams are ended by genai/_reaper.py, never inside the garbage collector.) Such a re-entrant call only queues its bytes; the outer call writes
    them after its own, so lines never interleave. Each queued export is one ``write`` on an
    unbuffered binary file (one system call), with no Python-level buffer a re-entrant call
    could find half-filled.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._file: io.RawIOBase | None = None
        self._users = 0
        self._pending: list[bytes] = []
        self._draining = False

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def write(self, objects: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n" for obj in objects)
        if not text:
            return
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in some string: replace it, keep the batch
            data = clean(text).encode("utf-8")
        with self._lock:
            self._pending.append(data)
            if self._draining:
                return  # re-entered on this thread mid-write: the outer call writes it next, whole
            self._draining = True
            try:
                while self._pending:
                    self._write_all(self._pending.pop(0))
            except BaseException:
                self._pending.clear()  # a failing file: what was queued is lost with this batch
                raise
            finally:
                self._draining = False
                if self._users <= 0:
                    self._close_file()  # released while we were writing

    def _write_all(self, data: bytes) -> None:
        if self._file is None:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open across exports
        view = memoryview(data)
        while view:  # a short write (disk nearly full, signal): finish the lines
            written = self._file.write(view)
            if not written:
                raise OSError(f"cannot write to {self.path}: short write")
            view = view[written:]

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0 and not self._draining:
                self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_WRITERS: dict[str, _Writer] = {}
# A plain lock is enough here: only exporter construction takes it, and ending a span never
# constructs an exporter.
_WRITERS_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child (a multiprocessing worker) writes with fresh locks: one held by the
    parent's export thread at the fork would never be released here. Its file stays shared
    (append mode, one write per export, so lines from both processes do not interleave)."""
    global _WRITERS_LOCK
    _WRITERS_LOCK = threading.Lock()
    for writer in _WRITERS.values():
        writer._lock = threading.RLock()
        writer._pending = []
        writer._draining = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _writer_for(path: str | os.PathLike[str]) -> _Writer:
    key = os.path.abspath(os.fspath(path))
    with _WRITERS_LOCK:
        writer = _WRITERS.get(key)
        if writer is None:
            writer = _WRITERS[key] = _Writer(key)
        writer.acquire()
        return writer


class _JSONLBase:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._writer = _writer_for(self.path)
        self._closed = False

    def _write(self, objects: Iterable[dict[str, Any]]) -> bool:
        if self._closed:
            return False
        try:
            self._writer.write(objects)
            return True
        except Exception as exc:  # a full disk must not break the app
            contain(f"{type(self).__name__}.export", exc)
            return False

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class JSONLSpanExporter(_JSONLBase, SpanExporter):
    """Append finished spans to ``path``, one OTLP/JSON span object per line."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = self._write(span_json(span) for span in spans)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is flushed before it returns


class JSONLLogExporter(_JSONLBase, LogRecordExporter):
    """Append log/event records to ``path``, one OTLP/JSON log record per line."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._write(log_json(record) for record in batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JSONLMetricExporter(_JSONLBase, MetricExporter):
    """Append each collected metric to ``path``, one OTLP/JSON metric object per line."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
    ) -> None:
        _JSONLBase.__init__(self, path)
        MetricExporter.__init__(
            self, preferred_temporality=preferred_temporality, preferred_aggregation=preferred_aggregation
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        ok = self._write(metrics_json(metrics_data))
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._close()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True
