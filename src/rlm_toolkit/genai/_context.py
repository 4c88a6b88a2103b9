"""In-process context shared by the instrumentation, the callback bridge and the runtime.

Two context variables carry what the exported telemetry must not:

* :class:`Scope` -- set by ``RLM.run`` (and anything else that wants it) around a block of
  calls. It says which tracer/logger the calls in the block report to (the runtime falls back
  to a private in-process provider when the app configured none) and which *scoped* callbacks
  see them. One SDK processor per provider reads it in ``on_start`` to route spans to the
  right callbacks, so callbacks of one ``RLM`` never see another's calls.
* :class:`Payload` -- set only for the duration of a synchronous SDK hook (``start_span``,
  ``span.end()``, ``logger.emit()``) so in-process processors can read the full content of the
  invocation (messages, SDK objects, the streamed token) even when content capture for export
  is off. It is never attached to the span or the log record, so it can never be exported.

Both are plain ``ContextVar``s: correct under threads and asyncio, and ~50 ns to read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import Logger
from opentelemetry.trace import Tracer


@dataclass(frozen=True)
class Scope:
    """Where calls made inside a block report, and which scoped callbacks see them."""

    #: Tracer for spans started inside the scope; ``None`` keeps the instrumentor's own.
    tracer: Tracer | None = None
    #: Logger for event records (retries, tokens, memory) inside the scope; ``None`` = default.
    logger: Logger | None = None
    #: Callbacks that see only what happens inside this scope (e.g. one ``RLM``'s callbacks).
    callbacks: Sequence[Any] = ()
    #: True when some consumer in this scope wants per-token events (``on_token``).
    wants_tokens: bool = False


_SCOPE: ContextVar[Scope | None] = ContextVar("rlm_toolkit.scope", default=None)


def current_scope() -> Scope | None:
    return _SCOPE.get()


@contextmanager
def use_scope(scope: Scope | None) -> Iterator[Scope | None]:
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


class Payload:
    """Full, in-process data of one GenAI invocation or event. Never exported.

    Messages use the GenAI conventions' JSON shapes (``gen_ai.input.messages`` /
    ``gen_ai.output.messages``: ``{"role": ..., "parts": [{"type": "text", "content": ...}]}``),
    so consumers read our payloads and other instrumentations' captured attributes alike.
    """

    __slots__ = (
        "error",
        "extra",
        "input_messages",
        "output_messages",
        "request",
        "response",
        "system_instructions",
        "token",
        "tool_definitions",
    )

    def __init__(self) -> None:
        self.request: dict[str, Any] | None = None  # kwargs the user passed to the SDK method
        self.input_messages: list[dict[str, Any]] | None = None
        self.system_instructions: list[dict[str, Any]] | None = None
        self.tool_definitions: list[dict[str, Any]] | None = None
        self.output_messages: list[dict[str, Any]] | None = None
        self.response: Any = None  # the SDK's response object (last chunk for a stream)
        self.error: BaseException | None = None
        self.token: str | None = None  # the text delta of a token event
        self.extra: dict[str, Any] | None = None  # e.g. tool input/output for runtime spans


_PAYLOAD: ContextVar[Payload | None] = ContextVar("rlm_toolkit.payload", default=None)


def current_payload() -> Payload | None:
    return _PAYLOAD.get()


@contextmanager
def payload_during(payload: Payload | None) -> Iterator[None]:
    """Expose ``payload`` to in-process processors while a synchronous SDK hook runs."""
    token = _PAYLOAD.set(payload)
    try:
        yield
    finally:
        _PAYLOAD.reset(token)


class _Consumers:
    """Whether any in-process consumer (a callback processor) exists in this process.

    The instrumentation builds payloads only when this is true, so an app without callbacks
    pays nothing for them.
    """

    active: bool = False
    #: True when a process-wide callback (``instrument(callbacks=...)``) wants token events.
    global_wants_tokens: bool = False


consumers = _Consumers()
