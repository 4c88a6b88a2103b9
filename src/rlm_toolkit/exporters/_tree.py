"""``ConsoleTreeExporter``: finished spans rendered as a readable trace tree (rich).

Spans are collected as they end and rendered at ``force_flush``/``shutdown`` (the CLI's "when
the app exits" view), or trace by trace as each root span ends (``per_trace=True``). Rendering
is in ``_render``; this module only collects, bounded, under a reentrant lock, and prints under
it too, so traces printed from several threads (or re-entered mid-print by a span ended on the
same thread, e.g. from a signal handler) never interleave.

The at-exit view has a budget: it keeps the first and the last ``max_spans // 2`` spans (the
start of the run, and the end -- where the crash being debugged is) and counts the rest, so
its memory and its rendering time (about a millisecond per span) do not grow with the run, and
it always prints within the shutdown cap. The ``Σ`` line stays exact over every span
(:class:`._totals.Totals`) and says how many spans and traces were left out.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import IO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from rlm_toolkit._safety import contain
from rlm_toolkit.exporters._totals import Totals, is_llm_call, is_root

#: Spans shown: all of a run up to this size (a 10-call run, a few hundred spans of an agent);
#: beyond it the first and the last half, with exact totals. About 0.2 s to render at exit.
DEFAULT_MAX_SPANS = 200


class ConsoleTreeExporter(SpanExporter):
    """Render finished spans as a tree per trace: durations as bars, model, tokens, cost,
    retries and errors (in red).

    ``file`` defaults to ``sys.stderr`` (looked up at render time, so pytest capture works).
    """

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        per_trace: bool = False,
        width: int | None = None,
        color: bool | None = None,
        max_spans: int = DEFAULT_MAX_SPANS,
    ) -> None:
        self._file = file
        self._per_trace = per_trace
        self._width = width
        self._color = color
        self._max_spans = max_spans
        # Reentrant: a span ended on this thread while it holds the lock (a signal handler, a
        # callback making an instrumented call) exports back here; such a call only queues its
        # batch (see ``_drain``). Abandoned streams no longer end inside the garbage collector
        # (genai/_reaper.py), so this is defence in depth.
        self._lock = threading.RLock()
        self._pending: list[tuple[ReadableSpan, ...]] = []
        self._draining = False
        self._spans: list[ReadableSpan] = []  # per_trace: spans of traces still open
        self._dropped = 0
        self._head: list[ReadableSpan] = []  # at exit: the first spans ...
        self._tail: deque[ReadableSpan] = deque(maxlen=max(max_spans - max_spans // 2, 0))  # ... and the last
        self._totals = Totals()
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        batch = tuple(spans)  # our own copy, taken before the lock
        with self._lock:
            self._pending.append(batch)
            if self._draining:
                # A span ended on this thread while it was already filing or printing: the
                # outer call files and prints this batch next, whole.
                return SpanExportResult.SUCCESS
            self._drain(flush=False)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if not self._draining:  # a re-entrant flush leaves the work to the outer call
                self._drain(flush=True)
        return True

    def _drain(self, *, flush: bool) -> None:
        """File every pending batch (printing finished traces when ``per_trace``); when
        ``flush``, print everything collected, until nothing is left. Runs under the lock with ``_draining`` set, so a
        re-entrant ``export`` only queues its batch and this loop picks it up."""
        self._draining = True
        try:
            while True:
                while self._pending:
                    ready = self._keep(self._pending.pop(0))
                    if ready:
                        self._emit(ready, 0)
                if not flush:
                    break
                if self._per_trace:
                    spans, self._spans = self._spans, []
                    dropped, self._dropped = self._dropped, 0
                    if not spans and not dropped:
                        break
                    self._emit(spans, dropped)  # a batch queued while printing is printed next round
                    continue
                totals, self._totals = self._totals, Totals()
                if not totals.spans:
                    break
                head, tail = self._head, list(self._tail)
                self._head = []
                self._tail.clear()
                self._emit(head, 0, totals, tail)
        finally:
            self._draining = False

    def _keep(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        """Keep ``spans`` (bounded); with ``per_trace``, return the traces whose root ended."""
        if not self._per_trace:
            head_room = self._max_spans // 2
            for span in spans:
                self._totals.add(span, is_llm_call(span))
                if len(self._head) < head_room:
                    self._head.append(span)
                else:
                    self._tail.append(span)  # the oldest falls off: counted, not kept
            return []
        room = max(self._max_spans - len(self._spans), 0)
        self._spans.extend(spans[:room])
        self._dropped += max(len(spans) - room, 0)
        if not self._per_trace:
            return []
        done = {s.context.trace_id for s in spans if s.context is not None and is_root(s)}
        if not done:
            return []
        ready = [s for s in self._spans if s.context is not None and s.context.trace_id in done]
        self._spans = [s for s in self._spans if s.context is None or s.context.trace_id not in done]
        return ready

    def shutdown(self) -> None:
        if not self._shutdown:
            self.force_flush()
            self._shutdown = True

    def render(self, spans: Sequence[ReadableSpan], dropped: int = 0) -> str:
        """The text the exporter would print for ``spans`` (no colour codes)."""
        from rlm_toolkit.exporters._render import render_text

        return render_text(spans, dropped, width=self._width or 120)

    def _emit(
        self,
        spans: Sequence[ReadableSpan],
        dropped: int,
        totals: Totals | None = None,
        tail: Sequence[ReadableSpan] = (),
    ) -> None:
        try:
            from rlm_toolkit.exporters._render import print_traces

            print_traces(
                spans,
                dropped,
                file=self._file or sys.stderr,
                width=self._width,
                color=self._color,
                totals=totals,
                tail=tail,
            )
        except Exception as exc:  # rendering must never break the app's exit
            contain("ConsoleTreeExporter.render", exc)
