"""Logs-API event records, with the in-process payload exposed while the SDK emits them."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry._logs import Logger
from opentelemetry.trace import Span, set_span_in_context

from rlm_toolkit.genai._context import Payload, payload_during


def emit_event(
    logger: Logger,
    name: str,
    attributes: dict[str, Any],
    span: Span,
    payload: Payload | None,
    timestamp: int | None = None,
) -> None:
    """Emit ``name`` as a Logs-API event record in ``span``'s context.

    ``timestamp``: the event time (``time.time_ns``; now when omitted) -- the record carries it
    as ``timestamp``, not only the SDK's ``observed_timestamp``. ``payload`` (never part of the
    record) is visible to in-process processors during emit.
    """
    context = set_span_in_context(span)
    if timestamp is None:
        timestamp = time.time_ns()
    if payload is None:
        logger.emit(event_name=name, attributes=attributes, context=context, timestamp=timestamp)
        return
    with payload_during(payload):
        logger.emit(event_name=name, attributes=attributes, context=context, timestamp=timestamp)
