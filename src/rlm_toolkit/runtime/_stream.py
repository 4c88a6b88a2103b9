"""``RLM.stream``: the answer's text tokens as they arrive, then an :class:`RLMResult`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from opentelemetry.trace import Tracer

from rlm_toolkit.runtime._calls import STREAM_ARGS, ChunkAccumulator
from rlm_toolkit.runtime._drive import build_result
from rlm_toolkit.runtime._result import RLMResult
from rlm_toolkit.runtime._run_span import RunSpan


class RLMStream:
    """Iterator of text deltas of one run; ``result`` is set once the stream is finished.

    The run span and the streamed chat call start on the first ``next()``. Each step re-enters
    the RLM's scope and makes the run span current for just that step, so nothing is attached
    across yields. Closing early (``close()``, leaving a ``with`` block) ends the call and the
    run with the text received so far.
    """

    def __init__(
        self,
        *,
        client: Any,
        model: str,
        prompt: str,
        context: str | None,
        messages: list[dict[str, Any]],
        scoped: Callable[[], AbstractContextManager[Any]],
        tracer: Tracer,
        capture: bool = False,
    ) -> None:
        self._client = client
        self._model = model
        self._prompt = prompt
        self._context = context
        self._messages = messages
        self._scoped = scoped
        self._tracer = tracer
        self._capture = capture
        self._run: RunSpan | None = None
        self._chunks: Any = None
        self._acc = ChunkAccumulator()
        self._done = False
        self.result: RLMResult | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        with self._scoped():
            try:
                if self._run is None:
                    self._run = RunSpan(
                        self._tracer, self._model, self._prompt, self._context, capture=self._capture
                    )
                    with self._run.current():
                        self._chunks = self._client.chat.completions.create(
                            model=self._model, messages=self._messages, **STREAM_ARGS
                        )
                with self._run.current():
                    for chunk in self._chunks:
                        delta = self._acc.add(chunk)
                        if delta is not None:
                            return delta
                self._finish()
            except BaseException as exc:
                self._done = True
                self._close_chunks()
                if self._run is not None:
                    self._run.fail(exc)
                raise
        raise StopIteration

    def _close_chunks(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def _finish(self) -> None:
        self._done = True
        completion = self._acc.completion()
        run = self._run
        self.result = build_result(
            self._model, completion.content, [completion], run.trace_id if run else None
        )
        if run is not None:
            run.finish(self.result)

    def close(self) -> None:
        """Stop early: close the HTTP stream and end the run with the text received so far."""
        if self._done:
            return
        with self._scoped():
            self._close_chunks()
            self._finish()

    def __enter__(self) -> RLMStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
