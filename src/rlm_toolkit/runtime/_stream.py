"""``RLM.stream``: the answer's text tokens as they arrive, then an :class:`RLMResult`.

The run ends exactly once, whichever way the stream is left, with the same end reasons the
instrumentation's stream proxies use (``rlm.stream.end_reason`` on the run span):

* ``completed`` -- iterated to the end: ``on_run_end`` with the whole answer;
* ``closed`` -- ``close()`` or leaving a ``with`` block (e.g. ``break``) before the end:
  ``on_run_end`` with the text received so far;
* ``error`` -- an exception while iterating (re-raised unchanged), or leaving the ``with``
  block by an exception: the run span fails, ``on_error``;
* ``abandoned`` -- garbage-collected unfinished: like ``closed``. A ``weakref.finalize`` on the
  stream object (never ``__del__``) only queues the run; the reaper thread
  (``genai/_reaper.py``) ends it outside the garbage collector, the inner LLM span and the run
  span with the abandonment time.

In every case the inner SDK stream is closed (its HTTP response released) and its LLM span ends
with the same reason.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    RLM_STREAM_END_REASON,
    STREAM_END_ABANDONED,
    STREAM_END_CLOSED,
    STREAM_END_COMPLETED,
    STREAM_END_ERROR,
)
from rlm_toolkit.genai import Scope, TelemetryHandler
from rlm_toolkit.genai._reaper import abandon, ensure_started, track, untrack
from rlm_toolkit.runtime._drive import build_result
from rlm_toolkit.runtime._result import RLMResult
from rlm_toolkit.runtime._run_span import RunSpan


class _StreamRun:
    """The state of one streamed run. The finalizer holds this, never the :class:`RLMStream`."""

    __slots__ = (
        "_chunks",
        "_client",
        "_context",
        "_deltas",
        "_handler",
        "_messages",
        "_model",
        "_prompt",
        "_run",
        "_scope",
        "_scoped",
        "done",
        "result",
    )

    def __init__(
        self,
        *,
        client: Callable[..., Any],
        model: str,
        prompt: str,
        context: Any,
        messages: list[dict[str, Any]],
        scoped: Callable[[], AbstractContextManager[Any]],
        handler: TelemetryHandler,
        scope: Scope | None,
    ) -> None:
        self._client = client
        self._model = model
        self._prompt = prompt
        self._context = context
        self._messages = messages
        self._scoped = scoped
        self._handler = handler
        self._scope = scope
        self._run: RunSpan | None = None
        #: The call's :class:`~rlm_toolkit.runtime._provider.DeltaStream` while open; and kept
        #: (``_deltas``) for the completion after it ended.
        self._chunks: Any = None
        self._deltas: Any = None
        self.done = False
        self.result: RLMResult | None = None

    def step(self) -> str | None:
        """The next text delta; ``None`` once the stream is exhausted (the run is then ended)."""
        with self._scoped():
            try:
                if self._run is None:
                    self._run = RunSpan(self._handler, self._scope, self._model, self._prompt, self._context)
                    track(self)  # a stream still open at exit ends there (at_exit)
                    with self._run.current():
                        self._chunks = self._deltas = self._client(
                            model=self._model, messages=self._messages, stream=True
                        )
                with self._run.current():
                    for delta in self._chunks:
                        return str(delta)
            except BaseException as exc:
                self.end(STREAM_END_ERROR, exc)
                raise
        self.end(STREAM_END_COMPLETED)
        return None

    def at_exit(self, exc: BaseException | None) -> None:
        """The process is ending with this stream open: ``error`` with ``exc``, else ``abandoned``."""
        if exc is not None:
            self.end(STREAM_END_ERROR, exc)
        else:
            self.end(STREAM_END_ABANDONED)

    def abandoned(self, end_time: int, end_ns: int) -> None:
        """Called by the reaper thread for an :class:`RLMStream` garbage-collected unfinished."""
        self.end(STREAM_END_ABANDONED, None, end_time, end_ns)

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        """End the inner stream and the run, once; ``exc`` (with ``error``) fails the run.

        ``end_time``/``end_ns``: when it was abandoned (the inner LLM span and the run span end
        then).
        """
        if self.done:
            return
        self.done = True
        untrack(self)
        with self._scoped():
            self._end_inner(reason, exc, end_time, end_ns)
            run = self._run
            if exc is not None:
                if run is not None:
                    run.fail(exc, {RLM_STREAM_END_REASON: reason}, end_time)
                return
            try:
                deltas = self._deltas
                completions = [deltas.completion()] if run is not None and deltas is not None else []
                content = completions[0].content if completions else ""
                self.result = build_result(
                    self._model, content, completions, run.trace_id if run is not None else None
                )
            except Exception as error:
                contain("runtime: stream result", error)
                self.result = RLMResult(answer="", model=self._model)
            if run is not None:
                run.finish(self.result, {RLM_STREAM_END_REASON: reason}, end_time)

    def _end_inner(
        self, reason: str, exc: BaseException | None, end_time: int | None, end_ns: int | None
    ) -> None:
        chunks = self._chunks
        if chunks is None:
            return
        self._chunks = None
        try:
            # End the LLM span with our reason first (``close()`` alone would say "closed").
            chunks.end(reason, exc, end_time, end_ns)
            chunks.close()
        except Exception as error:
            contain("runtime: close inner stream", error)


class RLMStream:
    """Iterator of the text deltas of one run; ``result`` is set once the stream has ended.

    The run span and the streamed chat call start on the first ``next()``. Each step re-enters
    the RLM's scope and makes the run span current for just that step, so nothing is attached
    across yields. The run ends exactly once: at the end of the iteration, on ``close()`` or
    leaving a ``with`` block (with the text received so far), on an error (re-raised after
    ``on_error``), or when the stream is garbage-collected unfinished (end reason
    ``abandoned``).
    """

    def __init__(
        self,
        *,
        client: Callable[..., Any],
        model: str,
        prompt: str,
        context: Any,
        messages: list[dict[str, Any]],
        scoped: Callable[[], AbstractContextManager[Any]],
        handler: TelemetryHandler,
        scope: Scope | None = None,
    ) -> None:
        self._state = _StreamRun(
            client=client,
            model=model,
            prompt=prompt,
            context=context,
            messages=messages,
            scoped=scoped,
            handler=handler,
            scope=scope,
        )
        ensure_started()
        self._finalizer = weakref.finalize(self, abandon, self._state.abandoned)
        self._finalizer.atexit = False  # the reaper's exit drain ends what was collected

    @property
    def result(self) -> RLMResult | None:
        """The run's result once the stream has ended without an error, else ``None``."""
        return self._state.result

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        state = self._state
        if state.done:
            raise StopIteration
        try:
            delta = state.step()
        finally:
            if state.done:
                self._finalizer.detach()
        if delta is None:
            raise StopIteration
        return delta

    def _end(self, reason: str, exc: BaseException | None = None) -> None:
        self._finalizer.detach()
        self._state.end(reason, exc)

    def close(self) -> None:
        """Stop early: close the HTTP stream and end the run with the text received so far."""
        self._end(STREAM_END_CLOSED)

    def __enter__(self) -> RLMStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self._end(STREAM_END_CLOSED)
        else:
            self._end(STREAM_END_ERROR, exc)
