"""In-process context shared by the instrumentation, the callback processors and the runtime.

Two context variables carry what the exported telemetry must not:

* :class:`Scope` -- set by ``RLM.run`` (and anything else that wants it) around a block of
  calls. It names the :class:`~rlm_toolkit.genai._handler.TelemetryHandler` the calls in the
  block report through (its tracer, logger, content policy) and the *scoped* callbacks that
  see them. The one routing processor on that handler's providers delivers them, so callbacks
  of one ``RLM`` never see another's calls.
* :class:`Payload` -- set only for the duration of a synchronous SDK hook (``start_span``,
  ``span.end()``, ``logger.emit()``) so in-process processors can read the full content of the
  invocation (messages, SDK objects, the streamed token) even when content capture for export
  is off. It is never attached to the span or the log record, so it can never be exported.

Both are plain ``ContextVar``s: correct under threads and asyncio, and ~50 ns to read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_toolkit.genai._handler import TelemetryHandler


@dataclass(frozen=True)
class Scope:
    """Where calls made inside a block report, and which scoped callbacks see them."""

    #: The pipeline calls inside the scope report through; ``None`` keeps the instrumentation's.
    handler: TelemetryHandler | None = None
    #: Callbacks that see only what happens inside this scope (e.g. one ``RLM``'s callbacks).
    callbacks: Sequence[Any] = ()
    #: True when some consumer in this scope wants per-token events (``on_token``).
    wants_tokens: bool = False


_SCOPE: ContextVar[Scope | None] = ContextVar("rlm_toolkit.scope", default=None)

#: The invocation of the call a runtime provider made last in this context (set by a wrapper
#: made for the runtime, read by the runtime after the call): how a run's budget reads the
#: very cost its LLM span carries. Typed loosely: ``_invocation`` imports this module.
REPORTED: ContextVar[Any] = ContextVar("rlm_toolkit.reported", default=None)


#: ``current_scope()``: the scope in force on this thread/task, or None. The context
#: variable's own ``get`` (a C method): every wrapped call asks, and this costs no Python frame.
current_scope: Callable[[], Scope | None] = _SCOPE.get


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

    Every field defaults to None at class level: ``Payload()`` runs no Python ``__init__`` (a
    payload is made per call when someone consumes it), and a producer sets only what it has.
    """

    request: dict[str, Any] | None = None  # kwargs the user passed to the SDK method
    input_messages: list[dict[str, Any]] | None = None
    system_instructions: list[dict[str, Any]] | None = None
    tool_definitions: list[dict[str, Any]] | None = None
    output_messages: list[dict[str, Any]] | None = None
    response: Any = None  # the SDK's response (last chunk of a stream); an agent run's result
    error: BaseException | None = None
    token: str | None = None  # the text delta of a token event
    tool_input: Any = None  # a tool execution's input (``execute_tool`` spans)
    tool_output: Any = None  # and its output, at the span's end
    # Routing of an event record: the scope its invocation started in (so tokens of a stream
    # iterated outside the scope still reach it) and the span it belongs to.
    scope: Scope | None = None
    span: Any = None


#: The payload exposed right now. Producers on the hot path set and reset it directly (a
#: ``payload_during`` block costs a generator per call); everyone else uses the helpers below.
PAYLOAD: ContextVar[Payload | None] = ContextVar("rlm_toolkit.payload", default=None)
_PAYLOAD = PAYLOAD


#: ``current_payload()``: the payload exposed right now, or None (``PAYLOAD.get``, a C method).
current_payload: Callable[[], Payload | None] = PAYLOAD.get


@contextmanager
def payload_during(payload: Payload | None) -> Iterator[None]:
    """Expose ``payload`` to in-process processors while a synchronous SDK hook runs."""
    token = _PAYLOAD.set(payload)
    try:
        yield
    finally:
        _PAYLOAD.reset(token)
