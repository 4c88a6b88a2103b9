"""The callback base classes: every method is a no-op, every argument is a keyword.

The processors deliver typed events (``callbacks/_events.py``) as ``cb.on_x(name=value, ...)``,
keywords only, passing just the keywords a method accepts when it has no ``**kwargs`` (so ``def on_token(self, token)`` works). The
bases keep no instance state, so subclasses may skip ``super().__init__()``.

Useful keywords on every event: ``model``, ``operation`` (``gen_ai.operation.name``),
``run_id`` / ``parent_run_id`` (hex span ids), ``span`` (the SDK span), ``start_time`` (epoch
seconds) and, on end/error events, ``end_time`` and ``duration_ms``.
"""

from __future__ import annotations

from typing import Any

from rlm_toolkit.callbacks._types import LLMResponse

#: Every event method the processors may call, in the order a reader meets them.
EVENT_METHODS = (
    "on_run_start",
    "on_run_end",
    "on_llm_start",
    "on_token",
    "on_llm_end",
    "on_error",
    "on_retry",
    "on_tool_start",
    "on_tool_end",
)


class BaseCallback:
    """Subclass and override the events you need. Methods run on the app's thread."""

    def on_run_start(self, prompt: str, **kwargs: Any) -> Any:
        """An ``RLM.run`` (``invoke_agent`` span) started with ``prompt``."""

    def on_run_end(self, result: Any, **kwargs: Any) -> Any:
        """An ``RLM.run`` finished with ``result`` (its final answer).

        A failed run ends here too, with ``result=None`` and ``error`` set (``error`` is
        ``None`` after a successful run).
        """

    def on_llm_start(self, prompt: str, **kwargs: Any) -> Any:
        """An LLM call started; ``prompt`` is the last user message, ``messages`` all of them."""

    def on_token(self, token: str, **kwargs: Any) -> Any:
        """A streamed text token (delta) reached the app.

        ``index`` is its 0-based position among the stream's text tokens (the event's
        ``rlm.token.index``; ``None`` if the producer gave none); ``run_id`` is the LLM span's id.
        """

    def on_llm_end(self, response: LLMResponse, **kwargs: Any) -> Any:
        """An LLM call succeeded (never called for a failed call: see :meth:`on_error`)."""

    def on_error(self, error: BaseException, **kwargs: Any) -> Any:
        """A call, tool step or run failed with ``error`` (``operation`` says which).

        Called once per failure, for the innermost span that failed: when a failed call makes
        its run fail with the same error, the run does not report it again (it ends with
        ``on_run_end(result=None, error=...)``). ``error`` is the exception itself in process,
        or a :class:`~rlm_toolkit.callbacks.SpanError` rebuilt from telemetry.
        """

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> Any:
        """The SDK is about to retry (``attempt`` is 1-based; ``delay_s`` is its sleep)."""

    def on_tool_start(self, tool_name: str, tool_input: Any, **kwargs: Any) -> Any:
        """A tool/REPL step started."""

    def on_tool_end(self, tool_name: str, tool_output: Any, **kwargs: Any) -> Any:
        """A tool/REPL step finished."""


class AsyncBaseCallback(BaseCallback):
    """Like :class:`BaseCallback`, with ``async def`` methods.

    The processors never block the app on them: inside a running event loop (this thread) each
    coroutine is scheduled on that loop with ``create_task``; elsewhere it runs on a private
    background loop thread. Events of one callback start in the order they happened.
    """

    async def on_run_start(self, prompt: str, **kwargs: Any) -> Any:
        """An ``RLM.run`` started."""

    async def on_run_end(self, result: Any, **kwargs: Any) -> Any:
        """An ``RLM.run`` finished."""

    async def on_llm_start(self, prompt: str, **kwargs: Any) -> Any:
        """An LLM call started."""

    async def on_token(self, token: str, **kwargs: Any) -> Any:
        """A streamed text token reached the app (``index``: 0-based, see BaseCallback)."""

    async def on_llm_end(self, response: LLMResponse, **kwargs: Any) -> Any:
        """An LLM call succeeded."""

    async def on_error(self, error: BaseException, **kwargs: Any) -> Any:
        """A call, tool step or run failed."""

    async def on_retry(
        self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any
    ) -> Any:
        """The SDK is about to retry."""

    async def on_tool_start(self, tool_name: str, tool_input: Any, **kwargs: Any) -> Any:
        """A tool/REPL step started."""

    async def on_tool_end(self, tool_name: str, tool_output: Any, **kwargs: Any) -> Any:
        """A tool/REPL step finished."""


#: The bases' no-op methods (dispatch skips a callback method that is one of them).
NOOPS = frozenset(getattr(base, name) for base in (BaseCallback, AsyncBaseCallback) for name in EVENT_METHODS)


def is_noop(cls: type, name: str) -> bool:
    """True when ``cls.name`` is one of the bases' no-ops (so dispatch can skip the call)."""
    return getattr(cls, name, None) in NOOPS
