"""What the runtime's two delta streams share (``_openai_model.OpenAIDeltas``,
``instrumentation/anthropic/_runtime.AnthropicDeltas``): a
:class:`~rlm_toolkit.runtime._provider.DeltaStream` over the instrumentation's stream proxy,
which ends the call's span once on every exit path. A subclass reads one SDK's chunks
(``__next__``/``__anext__``) and reduces them to a ``completion()``; the rest is here.
"""

from __future__ import annotations

from typing import Any


class ProxiedDeltas:
    """Context management, closing, attribute passthrough and the span's end/retry marks of a
    delta stream over the instrumentation's stream proxy ``_stream``. Not a hot path: the
    per-chunk methods are the subclass's."""

    __slots__ = ("_it", "_stream")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._it: Any = None

    def __iter__(self) -> ProxiedDeltas:
        return self

    def __aiter__(self) -> ProxiedDeltas:
        return self

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._stream.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._stream.__aexit__(*exc_info)

    def close(self) -> None:
        self._stream.close()

    async def aclose(self) -> None:
        await self._stream.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (``response``, headers...) is the SDK stream's.
        return getattr(self._stream, name)

    def _state(self) -> Any:
        """The proxy's stream state (None when the call was not reported)."""
        from rlm_toolkit.genai import stream_state_of  # loaded by the proxy that made _stream

        return stream_state_of(self._stream)

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        state = self._state()
        if state is not None:
            state.end(reason, exc, end_time, end_ns)

    def retried(self, attempt: int) -> None:
        state = self._state()
        if state is not None:
            state.inv.attempts = attempt
