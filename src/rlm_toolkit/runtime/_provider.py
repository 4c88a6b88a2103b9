"""The runtime's model interface: how a run makes one model call, reporting through the
handler it is given. Provider-neutral: the runtime knows no SDK and no wire shape.

A provider (``rlm_toolkit._providers`` wires them: ``openai`` in
``instrumentation/openai/_runtime.py``, ``anthropic`` in ``instrumentation/anthropic/_runtime.py``)
turns a client and the run's :class:`~rlm_toolkit.genai.TelemetryHandler` into a
:class:`ModelCall`. One call makes one API request through the SDK (its retry loop included)
and reports it -- one inference span, its metrics and events -- through that handler, whether
or not the SDK is instrumented process-wide, and never twice. What comes back is what the run
needs and nothing SDK-specific:

* not streamed: a :class:`~rlm_toolkit.runtime._strategy.Completion` (text, usage, finish
  reason, model, the cost the span carries);
* streamed: a :class:`DeltaStream` of text deltas (streamed text reaches ``on_token``
  consumers through the handler's token events as it arrives), whose :meth:`DeltaStream.completion`
  is the same :class:`Completion` once the stream has ended -- or what arrived so far, when it
  was cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Protocol

from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.runtime._strategy import Completion


class DeltaStream(Protocol):
    """One streamed model call: an iterator of its text deltas (``str``).

    Ends the call's span exactly once: at the end of the iteration, on an error while
    iterating (re-raised unchanged), on :meth:`close` (``closed``), on :meth:`end` with the
    caller's reason, or -- ``abandoned`` -- when garbage-collected unfinished. Used on one
    thread at a time.
    """

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def __enter__(self) -> DeltaStream: ...

    def __exit__(self, *exc_info: Any) -> Any: ...

    def close(self) -> None:
        """Release the HTTP response; the span ends as ``closed`` if it has not ended."""

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        """End the call's span now with ``reason`` (``exc``: fail it); no-op once ended."""

    def completion(self) -> Completion:
        """What the call said so far: the whole reply once ended (usage and cost as its span
        carries them), the part that arrived when cut (usage unknown unless reported)."""

    def retried(self, attempt: int) -> None:
        """This call is attempt ``attempt`` (1-based) of a streamed request retried by the
        runtime after a cut: reported on its span as ``rlm.request.attempts``."""


class AsyncDeltaStream(Protocol):
    """:class:`DeltaStream` for an async client: ``async for``, ``async with``, ``aclose``."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def __anext__(self) -> str: ...

    async def __aenter__(self) -> AsyncDeltaStream: ...

    async def __aexit__(self, *exc_info: Any) -> Any: ...

    async def aclose(self) -> None: ...

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None: ...

    def completion(self) -> Completion: ...

    def retried(self, attempt: int) -> None: ...


class ModelCall(Protocol):
    """``call(model=..., messages=[{"role", "content"}...], stream=False, timeout=None)``.

    ``messages`` are the runtime's chat-shaped messages (``system``/``user``/``assistant`` with
    str content); the provider maps them to its API. ``timeout``: the request's time limit in
    seconds (the SDK's per-request option). Returns a :class:`Completion`, or a
    :class:`DeltaStream` when ``stream`` is true. Raises what the SDK raises, unchanged.
    """

    def __call__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any: ...

    def stream_retry(self, exc: BaseException, retries: int) -> float | None:
        """A streamed call failed with ``exc`` while its reply was arriving, after ``retries``
        earlier such retries of the same request: the delay (seconds) before trying again
        when the client's retry policy would retry that failure (a dropped connection, an
        overloaded server), else None. Never raises."""


class AsyncModelCall(Protocol):
    """:class:`ModelCall` for an async client (an awaitable result)."""

    def __call__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool = False,
        timeout: float | None = None,
    ) -> Awaitable[Any]: ...

    def stream_retry(self, exc: BaseException, retries: int) -> float | None: ...


class ModelProvider(Protocol):
    """Makes a run's model calls through a client, reporting through a given handler.

    Called on the run's thread (sync) or event loop (async); the returned callables are used
    for the calls of one run. Neither method raises for a client it cannot instrument: the
    call is then made and reduced, unreported.
    """

    #: The SDK this provider drives (``"openai"``, ``"anthropic"``).
    name: str

    def create(self, handler: TelemetryHandler, client: Any) -> ModelCall: ...

    def acreate(self, handler: TelemetryHandler, client: Any) -> AsyncModelCall: ...

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any: ...

    def async_client(self, policy: Any, options: dict[str, Any]) -> Any: ...
