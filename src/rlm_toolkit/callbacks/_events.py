"""Typed callback events: what the processors extract from telemetry and hand to dispatch.

One frozen record per kind of event, named after what happened (``LLMStart``, ``Token``, ...),
with the ``BaseCallback`` method it is delivered to as a class constant. Producers of events
(the span and log-record processors, the span exporter) build records; ``_span_processor.deliver``
turns one into the keywords of that method, once per event, whatever the number of callbacks.

A field left at :data:`ABSENT` is not passed at all (e.g. ``tool_name`` on the ``on_error`` of
a span that is not a tool's), so callbacks receive exactly the keywords they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ABSENT",
    "Event",
    "Failed",
    "LLMEnd",
    "LLMStart",
    "PointEvent",
    "Retry",
    "RunEnd",
    "RunStart",
    "SpanEnd",
    "SpanEvent",
    "Token",
    "ToolEnd",
    "ToolStart",
]


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: A keyword this event does not carry (not passed to the callback at all).
ABSENT: Any = _Absent()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``method``: the ``BaseCallback`` method it is delivered to."""

    method: ClassVar[str] = ""

    operation: str | None = None
    model: str | None = None
    #: Hex span id of the span the event is about (``None`` when there is none).
    run_id: str | None = None
    parent_run_id: str | None = None
    #: The SDK span (live on start/point events, ended on end events).
    span: Any = None
    #: Epoch seconds.
    start_time: float | None = None

    def keywords(self) -> dict[str, Any]:
        """The keywords the callback method receives (fields left :data:`ABSENT` omitted)."""
        # The fields are the instance dict, in field order (``_span_processor.deliver`` inlines this).
        return {k: v for k, v in vars(self).items() if v is not ABSENT}


# -- span events ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpanEvent(Event):
    """The start of a GenAI span."""


@dataclass(frozen=True, kw_only=True)
class LLMStart(SpanEvent):
    method: ClassVar[str] = "on_llm_start"
    prompt: str = ""
    messages: list[dict[str, Any]] | None = None
    invocation_params: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ToolStart(SpanEvent):
    method: ClassVar[str] = "on_tool_start"
    tool_name: str = ""
    tool_input: Any = None


@dataclass(frozen=True, kw_only=True)
class RunStart(SpanEvent):
    method: ClassVar[str] = "on_run_start"
    prompt: str = ""
    agent_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SpanEnd(Event):
    """The end of a GenAI span."""

    end_time: float | None = None
    duration_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class LLMEnd(SpanEnd):
    method: ClassVar[str] = "on_llm_end"
    response: Any = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class ToolEnd(SpanEnd):
    method: ClassVar[str] = "on_tool_end"
    tool_name: str = ""
    tool_output: Any = None


@dataclass(frozen=True, kw_only=True)
class RunEnd(SpanEnd):
    """A run ended: ``error`` is ``None`` after success; a failed run also carries the failure's
    ``error_type`` and ``attempts``."""

    method: ClassVar[str] = "on_run_end"
    result: Any = None
    error: BaseException | None = None
    error_type: str | None = ABSENT
    attempts: int | None = ABSENT


@dataclass(frozen=True, kw_only=True)
class Failed(SpanEnd):
    """A span ended with an error (``tool_name`` only on a tool's span)."""

    method: ClassVar[str] = "on_error"
    error: BaseException | None = None
    error_type: str | None = None
    attempts: int | None = None
    tool_name: str = ABSENT

    def run_ended(self) -> RunEnd:
        """The ``on_run_end(result=None, error=...)`` of a run span that failed with this."""
        return RunEnd(
            operation=self.operation,
            model=self.model,
            run_id=self.run_id,
            parent_run_id=self.parent_run_id,
            span=self.span,
            start_time=self.start_time,
            end_time=self.end_time,
            duration_ms=self.duration_ms,
            result=None,
            error=self.error,
            error_type=self.error_type,
            attempts=self.attempts,
        )


# -- point events (event records and span events) --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PointEvent(Event):
    """Something that happened during a span (``run_id`` is that span's id)."""

    #: Epoch seconds of the event (``start_time`` carries the same value).
    timestamp: float | None = None


@dataclass(frozen=True, kw_only=True)
class Token(PointEvent):
    method: ClassVar[str] = "on_token"
    token: str = ""
    #: 0-based position among the stream's text tokens (``None`` if the producer gave none).
    index: int | None = None


@dataclass(frozen=True, kw_only=True)
class Retry(PointEvent):
    method: ClassVar[str] = "on_retry"
    attempt: int = 0
    max_attempts: int = 0
    error: BaseException | None = None
    delay_s: Any = None
    retry_after_s: Any = None
    status_code: Any = None
    error_type: str | None = None
