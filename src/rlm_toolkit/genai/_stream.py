"""Stream proxies: the user's stream object, observed, with a lifecycle that ends the span once.

A proxy is a ``wrapt.ObjectProxy`` (every attribute we do not override -- ``.response``,
headers, ``_iterator``... -- passes through to the SDK stream) whose state lives in ``_self_``
attributes, never on the user's object. The chunk logic is shared by the sync and async
proxies (:class:`StreamState`). ``for chunk in proxy`` runs a generator of ours over the SDK's
inner chunk iterator (:func:`_observe`), so per chunk with capture off the only added work is
the provider's O(1) chunk hook (a counter, the finish reason and usage, and for the first chunk
one clock read).

End reasons (``rlm.stream.end_reason``): ``completed`` (exhausted), ``closed`` (``close()``,
``aclose()``, ``__exit__`` -- including ``break`` inside ``with`` -- before the end),
``abandoned`` (garbage-collected unfinished; a ``weakref.finalize`` on the proxy queues it and
the reaper thread ends it with the abandonment time, see :mod:`._reaper`) and ``error`` (an
exception while iterating, or leaving the ``with`` block by an exception). Only ``error`` marks the span as failed.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    RLM_STREAM_CHUNK_COUNT,
    RLM_STREAM_END_REASON,
    STREAM_END_ABANDONED,
    STREAM_END_CLOSED,
    STREAM_END_COMPLETED,
    STREAM_END_ERROR,
)
from rlm_toolkit.genai import _reaper
from rlm_toolkit.genai._invocation import Invocation
from rlm_toolkit.genai._semconv import FINISH_REASON_ERROR


class ChunkHandler:
    """Base of the provider-specific accumulation of a stream's chunks.

    The proxy calls the subclass's ``on_chunk`` directly (one Python call per chunk, the least
    the proxy can do), so ``on_chunk`` does the generic bookkeeping itself, first thing::

        n = self.count
        self.count = n + 1
        if not n:
            self.first_ns = perf_counter_ns()

    and, when ``self.wants_tokens``, hands each text delta to :meth:`token`. It must be O(1)
    and keep no per-chunk data unless ``inv.wants_content``.
    """

    __slots__ = ("count", "first_ns", "inv", "tokens", "wants_tokens")

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.count = 0
        self.first_ns = 0
        self.tokens = 0
        self.wants_tokens = inv.wants_tokens

    def on_chunk(self, chunk: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def token(self, text: str) -> None:
        """One text delta reached the app: ``rlm.token.index`` is its 0-based position among
        the stream's text tokens (not the chunk position: role/usage chunks carry no text)."""
        index = self.tokens
        self.tokens = index + 1
        self.inv.token(index, text)

    def finish(self, inv: Invocation) -> Any:  # pragma: no cover - abstract
        """Fill ``inv`` (response attributes, usage, output messages); return the response."""
        raise NotImplementedError

    def absorb(self, chunk: Any) -> bool:
        """Opt-in stream usage: take ``chunk`` for the span and return True if it is the extra
        usage-only chunk we asked for (the app must not see it; it is not counted); else
        make the chunk look as it would have without our request and return False. Only
        called on streams whose state ``hides_usage``."""
        return False


class StreamState:
    """Shared by the sync and async proxies: ends the invocation exactly once."""

    __slots__ = ("done", "handler", "hides_usage", "inv")

    def __init__(self, inv: Invocation, handler: ChunkHandler) -> None:
        self.inv = inv
        self.handler = handler
        self.done = False
        #: We added ``include_usage`` to the request: hide the usage-only chunk from the app
        #: (decided once per stream; the plain chunk loop never checks it).
        self.hides_usage = False

    @property
    def count(self) -> int:
        return self.handler.count

    def end(
        self,
        reason: str,
        exc: BaseException | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        """End once. ``end_time`` (``time.time_ns``) / ``end_ns`` (``perf_counter_ns``): when
        the stream really ended, if that was earlier than now (an abandoned stream)."""
        if self.done:
            return
        self.done = True
        _reaper.untrack(self)
        try:
            if end_ns is None:
                end_ns = time.perf_counter_ns()
            inv = self.inv
            handler = self.handler
            response = handler.finish(inv)
            if reason != STREAM_END_COMPLETED and inv.handler.conventions.latest:
                _unfinished_choices(inv, handler)
            count = handler.count
            extra: dict[str, Any] = {RLM_STREAM_END_REASON: reason, RLM_STREAM_CHUNK_COUNT: count}
            first_chunk_s = None
            per_chunk_s = None
            if count:
                first_ns = handler.first_ns
                first_chunk_s = (first_ns - inv.start_ns) / 1e9
                extra[GA.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = first_chunk_s
                if reason == STREAM_END_COMPLETED and count > 1:
                    per_chunk_s = (end_ns - first_ns) / 1e9 / (count - 1)
            inv.record_stream_timing(first_chunk_s, per_chunk_s)
            if exc is None:
                inv.stop(response, extra, end_time, end_ns)
            else:
                inv.fail(exc, extra, end_time, end_ns)
        except Exception as error:
            contain("stream end", error)

    def abandoned(self, end_time: int, end_ns: int) -> None:
        """Called by the reaper thread for a proxy garbage-collected unfinished."""
        self.end(STREAM_END_ABANDONED, None, end_time, end_ns)

    def at_exit(self, exc: BaseException | None) -> None:
        """Called by the exit hook while the stream is still open: ``exc`` is the exception
        ending the process (the crash being debugged), None for an ordinary exit."""
        if exc is None:
            self.end(STREAM_END_ABANDONED)
        else:
            self.end(STREAM_END_ERROR, exc)


def _unfinished_choices(inv: Invocation, handler: ChunkHandler) -> None:
    """Latest mode, a stream that did not complete (closed, abandoned, failed): every choice
    whose finish reason was expected but never received is reported as ``error`` in its
    position, as the GenAI conventions' registry asks (``model/gen-ai/registry.yaml`` @
    ``e9de14bafd97``: "If a finish reason was expected but not received, for example because
    generation failed, was cancelled, or a stream ended before the final event,
    instrumentations SHOULD report ``error`` for that position instead of omitting it").
    Positions: the choices requested (``n``, default 1) and every choice index seen. The
    v1.41 text says only "corresponding to each generation received", so the default mode
    leaves them out."""
    attrs = inv.response_attributes if inv.response_attributes is not None else {}
    received = tuple(attrs.get(GA.GEN_AI_RESPONSE_FINISH_REASONS) or ())
    expected = _requested_choices(inv)
    by_index = getattr(handler, "reasons", None)  # chat chunks keep them by choice index
    if isinstance(by_index, dict):
        seen = {i for i in (*by_index, *getattr(handler, "buffers", ())) if isinstance(i, int) and i >= 0}
        positions = max(expected, max(seen, default=-1) + 1)
        reasons = tuple(str(by_index.get(i, FINISH_REASON_ERROR)) for i in range(positions))
    else:
        reasons = received + (FINISH_REASON_ERROR,) * (expected - len(received))
    if reasons != received:
        attrs[GA.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        inv.response_attributes = attrs


def _requested_choices(inv: Invocation) -> int:
    """``gen_ai.request.choice.count`` as the span was started with (1 when absent)."""
    attributes = getattr(getattr(inv, "span", None), "attributes", None) or {}
    count = attributes.get(GA.GEN_AI_REQUEST_CHOICE_COUNT, 1)
    return count if isinstance(count, int) and 1 <= count <= 128 else 1


def _collected(state: StreamState) -> None:
    """The proxy's finalizer (runs inside the GC): queue the state unless it already ended."""
    if not state.done:
        _reaper.abandon(state.abandoned)


def watch(proxy: object, state: StreamState) -> weakref.finalize:  # type: ignore[type-arg]
    """End ``state`` as abandoned when ``proxy`` is garbage-collected unfinished: the finalizer
    only queues it (lock-free); the reaper thread ends it (see :mod:`._reaper`)."""
    _reaper.ensure_started()
    _reaper.track(state)
    finalizer = weakref.finalize(proxy, _collected, state)
    finalizer.atexit = False  # the reaper's exit drain ends what was collected; not the rest
    return finalizer


def _observe(proxy: Any, state: StreamState, chunks: Iterator[Any]) -> Iterator[Any]:
    """What ``for chunk in proxy`` iterates: a generator over the SDK's own chunk iterator.

    A generator resumes far more cheaply than a Python ``__next__`` called through the type
    slot, and iterating the SDK's inner iterator directly replaces the SDK's own ``__iter__``
    generator layer instead of adding one, so per chunk the only added work is ``on_chunk``.

    ``proxy`` is held in the frame so the proxy stays alive while it is iterated (its finalizer
    means "abandoned"). An exception thrown in at the ``yield`` -- ``GeneratorExit`` (the
    generator closed, or collected after a ``break``), or the ``CancelledError`` with which
    ``asyncio.run`` cancels the ``aclose()`` of a generator left suspended when the app's own
    error ended it -- ends nothing: the consumer left, and ``close()``/``__exit__``, the proxy's
    finalizer or the exit hook (with the app's exception) say how the stream ended; nothing
    may end a span inside the GC.
    """
    on_chunk = state.handler.on_chunk
    thrown = False
    try:
        for chunk in chunks:
            try:  # zero-cost unless it raises (3.11+ exception tables)
                on_chunk(chunk)
            except Exception as exc:
                contain("stream chunk", exc)
            try:
                yield chunk
            except BaseException:
                thrown = True
                raise
    except BaseException as exc:
        if not thrown:
            state.end(STREAM_END_ERROR, exc)
        raise
    state.end(STREAM_END_COMPLETED)
    del proxy  # held by this frame until now: the proxy lives while it is iterated


def _visible(state: StreamState, chunks: Iterator[Any]) -> Iterator[Any]:
    """The chunks the app sees when the stream hides the usage chunk we asked for (opt-in):
    ``chunks`` less those ``absorb`` took. Observed by the one :func:`_observe` loop, so the
    option shares its ending rules and the plain loop pays nothing for it."""
    absorb = state.handler.absorb
    for chunk in chunks:
        if not _absorbed(absorb, chunk):
            yield chunk


async def _avisible(state: StreamState, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The async twin of :func:`_visible`."""
    absorb = state.handler.absorb
    async for chunk in chunks:
        if not _absorbed(absorb, chunk):
            yield chunk


def _absorbed(absorb: Callable[[Any], bool], chunk: Any) -> bool:
    """``absorb(chunk)`` (the handler's) with our errors contained: a failure shows the chunk."""
    try:
        return absorb(chunk)
    except Exception as exc:
        contain("stream chunk", exc)
        return False


async def _aobserve(proxy: Any, state: StreamState, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The async twin of :func:`_observe` (an async generator: no coroutine per chunk)."""
    on_chunk = state.handler.on_chunk
    thrown = False
    try:
        async for chunk in chunks:
            try:
                on_chunk(chunk)
            except Exception as exc:
                contain("stream chunk", exc)
            try:
                yield chunk
            except BaseException:
                thrown = True
                raise
    except BaseException as exc:
        if not thrown:
            state.end(STREAM_END_ERROR, exc)
        raise
    state.end(STREAM_END_COMPLETED)
    del proxy  # held by this frame until now: the proxy lives while it is iterated


class _StreamProxy(wrapt.ObjectProxy[Any]):
    """What the sync and async proxies share: their state, and where their chunks come from.

    ``chunk_source(wrapped)``, when the provider layer gives one, returns the SDK stream's inner
    chunk iterator (the same items its ``__iter__``/``__aiter__`` yields, without that extra
    layer), or None; then, and by default, the proxy iterates the stream itself.
    """

    def __init__(
        self, wrapped: Any, state: StreamState, chunk_source: Callable[[Any], Any] | None = None
    ) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_on_chunk = state.handler.on_chunk
        self._self_chunk_source = chunk_source
        self._self_finalizer = watch(self, state)

    def _inner_chunks(self) -> Any:
        """The SDK's inner chunk iterator as it is now, or None. Read when iteration starts."""
        source = self._self_chunk_source
        return source(self.__wrapped__) if source is not None else None

    def _left(self, exc: BaseException | None) -> None:
        """The ``with`` block was left: ``closed``, or ``error`` when left by an exception."""
        self._self_state.end(STREAM_END_CLOSED if exc is None else STREAM_END_ERROR, exc)


class SyncStreamProxy(_StreamProxy):
    """Proxy of a sync SDK stream (``openai.Stream``).

    ``iter(proxy)`` returns a generator over the same chunks, as the SDK's own ``Stream``
    does; ``next(proxy)`` works too.
    """

    def __iter__(self) -> Iterator[Any]:
        chunks = self._inner_chunks()
        state = self._self_state
        source = iter(self.__wrapped__) if chunks is None else chunks
        return _observe(self, state, _visible(state, source) if state.hides_usage else source)

    def __next__(self) -> Any:
        state = self._self_state
        try:
            chunk = self.__wrapped__.__next__()
            while state.hides_usage and _absorbed(state.handler.absorb, chunk):
                chunk = self.__wrapped__.__next__()
        except StopIteration:
            state.end(STREAM_END_COMPLETED)
            raise
        except BaseException as exc:
            state.end(STREAM_END_ERROR, exc)
            raise
        try:  # zero-cost unless it raises (3.11+ exception tables)
            self._self_on_chunk(chunk)
        except Exception as exc:
            contain("stream chunk", exc)
        return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._left(exc)

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_state.end(STREAM_END_CLOSED)


class AsyncStreamProxy(_StreamProxy):
    """Proxy of an async SDK stream (``openai.AsyncStream``); ``aiter()`` as in the sync one."""

    def __aiter__(self) -> AsyncIterator[Any]:
        chunks = self._inner_chunks()
        state = self._self_state
        source = aiter(self.__wrapped__) if chunks is None else chunks
        return _aobserve(self, state, _avisible(state, source) if state.hides_usage else source)

    async def __anext__(self) -> Any:
        state = self._self_state
        try:
            chunk = await self.__wrapped__.__anext__()
            while state.hides_usage and _absorbed(state.handler.absorb, chunk):
                chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            state.end(STREAM_END_COMPLETED)
            raise
        except BaseException as exc:
            state.end(STREAM_END_ERROR, exc)
            raise
        try:  # zero-cost unless it raises (3.11+ exception tables)
            self._self_on_chunk(chunk)
        except Exception as exc:
            contain("stream chunk", exc)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._left(exc)

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_state.end(STREAM_END_CLOSED)

    async def aclose(self) -> Any:
        target = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
        try:
            return await target()
        finally:
            self._self_state.end(STREAM_END_CLOSED)


def stream_state_of(obj: object) -> StreamState | None:
    """The state of one of our stream proxies, or None for anything else."""
    if isinstance(obj, _StreamProxy):
        state: StreamState = obj._self_state
        return state
    return None
