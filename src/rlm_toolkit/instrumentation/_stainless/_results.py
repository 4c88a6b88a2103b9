"""What a call method of a Stainless-generated client returns, and how our proxies see it.

``Kinds`` resolves the SDK's result classes once per wrapper (``Stream``/``AsyncStream``, the
legacy raw response of ``with_raw_response``, the lazy one of ``with_streaming_response``) and
knows how a stream proxy finds the chunks to iterate. ``RawStreamResponse`` is the raw response
of a streamed call, whose ``parse()`` returns our stream proxy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import FunctionType
from typing import Any

import wrapt
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context

from rlm_toolkit.genai import AsyncStreamProxy, StreamState, SyncStreamProxy
from rlm_toolkit.genai._stream import watch

#: ``opentelemetry.instrumentation.utils`` honours this legacy plain key too.
_SUPPRESS_PLAIN = "suppress_instrumentation"


def suppressed(ctx: Context) -> bool:
    """``not is_instrumentation_enabled()``, reading the context we already hold (one lookup
    instead of two ``get_value`` calls)."""
    return bool(ctx.get(_SUPPRESS_INSTRUMENTATION_KEY) or ctx.get(_SUPPRESS_PLAIN))


def _optional(module: str, name: str) -> type | None:
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:  # pragma: no cover - very old SDKs
        return None
    return found if isinstance(found, type) else None


class Kinds:
    """SDK classes the result is checked against, resolved once at instrument time.

    ``sdk``: the package (``openai``, ``anthropic``). ``chunk_reader``: how a plain SDK stream
    gives its inner chunk iterator (default: the ``_iterator`` already in the stream's
    ``__dict__``, as ``openai.Stream`` keeps it).
    """

    def __init__(self, sdk: str, chunk_reader: Callable[[Any], Any] | None = None) -> None:
        streaming = importlib.import_module(f"{sdk}._streaming")
        self.sdk = sdk
        self.stream: type = streaming.Stream
        self.async_stream: type = streaming.AsyncStream
        self._plain: dict[type, bool] = {}
        self._reader = chunk_reader or sdk_iterator
        self.legacy: type | None = _optional(f"{sdk}._legacy_response", "LegacyAPIResponse")
        self.raw: type | None = _optional(f"{sdk}._response", "BaseAPIResponse")

    def chunk_source(self, stream: Any) -> Callable[[Any], Any] | None:
        """How a proxy of ``stream`` finds the chunks to iterate: the reader when the stream's
        class iterates exactly as the SDK's ``Stream``/``AsyncStream`` do (their
        ``__iter__``/``__aiter__`` only re-yield ``_iterator``), so the proxy replaces that layer
        instead of adding one. None (iterate the stream itself) for a subclass that iterates
        differently or a patched ``__iter__``. Decided once per class."""
        cls = type(stream)
        plain = self._plain.get(cls)
        if plain is None:
            module = f"{self.sdk}._streaming"
            if isinstance(stream, self.async_stream):
                plain = _is_sdk_function(getattr(cls, "__aiter__", None), module, "AsyncStream.__aiter__")
            else:
                plain = _is_sdk_function(getattr(cls, "__iter__", None), module, "Stream.__iter__")
            self._plain[cls] = plain
        return self._reader if plain else None


def _is_sdk_function(fn: Any, module: str, qualname: str) -> bool:
    """``fn`` is the SDK's own plain function (not a subclass's, not a wrapper around it)."""
    return (
        type(fn) is FunctionType  # not isinstance(): a wrapt proxy of the function passes that
        and fn.__module__ == module
        and fn.__qualname__ == qualname
    )


def sdk_iterator(stream: Any) -> Any:
    """The SDK stream's chunk iterator as it is now. Read when iteration starts, not when the
    stream is made, because other code (e.g. another instrumentation) may replace it between
    the two, and the SDK's own ``__iter__`` would iterate the replacement."""
    return getattr(stream, "__dict__", {}).get("_iterator")


class RawStreamResponse(wrapt.ObjectProxy[Any]):
    """``with_raw_response`` of a stream: ``parse()`` returns our stream proxy."""

    def __init__(self, wrapped: Any, state: StreamState, kinds: Kinds) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_kinds = kinds
        self._self_stream: Any = None
        self._self_finalizer = watch(self, state)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if self._self_stream is None:
            self._self_finalizer.detach()  # the stream proxy watches from now on
            kinds = self._self_kinds
            cls = AsyncStreamProxy if isinstance(parsed, kinds.async_stream) else SyncStreamProxy
            self._self_stream = cls(parsed, self._self_state, kinds.chunk_source(parsed))
        return self._self_stream
