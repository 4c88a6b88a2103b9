"""``RLM.stream(prompt, context=...)``: a recursive run whose final answer is streamed in one piece.

The root model's replies in a recursive run are code, not answer text, so there are no answer
tokens to stream while it works. The run (with its own span tree and callbacks, exactly as
``RLM.run``) happens on the first ``next()``; the answer is the one item. Leaving before the
first ``next()`` starts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType

from rlm_toolkit.runtime._result import RLMResult


class AnswerStream:
    """Iterates a recursive run's final answer; ``.result`` holds the :class:`RLMResult` after."""

    __slots__ = ("_done", "_run", "result")

    def __init__(self, run: Callable[[], RLMResult]) -> None:
        self._run = run
        self._done = False
        self.result: RLMResult | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        self._done = True
        self.result = self._run()  # a failure is re-raised unchanged, as by RLM.run
        if not self.result.answer:
            raise StopIteration
        return self.result.answer

    def close(self) -> None:
        self._done = True

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
