"""Logs-API event records, with the in-process payload exposed while the SDK emits them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import Logger
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, set_span_in_context

from rlm_toolkit.attributes import EVENT_INFERENCE_DETAILS
from rlm_toolkit.genai._content import truncate_messages, truncate_parts
from rlm_toolkit.genai._context import Payload, payload_during

if TYPE_CHECKING:
    from rlm_toolkit.genai._invocation import Invocation


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


def emit_inference_details(inv: Invocation, error_type: str | None) -> None:
    """The conventions' ``gen_ai.client.inference.operation.details`` event (content capture on).

    Messages are structured values here (not JSON strings), as the conventions ask for events.
    """
    limit = inv.handler.max_length
    attrs: dict[str, Any] = {
        GA.GEN_AI_OPERATION_NAME: inv.operation,
        GA.GEN_AI_PROVIDER_NAME: inv.provider,
    }
    if inv.request_model:
        attrs[GA.GEN_AI_REQUEST_MODEL] = inv.request_model
    if inv.response_model:
        attrs[GA.GEN_AI_RESPONSE_MODEL] = inv.response_model
    if inv.response_attributes:
        for key in (GA.GEN_AI_RESPONSE_ID, GA.GEN_AI_RESPONSE_FINISH_REASONS):
            value = inv.response_attributes.get(key)
            if value is not None:
                attrs[key] = value
    if inv.input_tokens is not None:
        attrs[GA.GEN_AI_USAGE_INPUT_TOKENS] = inv.input_tokens
    if inv.output_tokens is not None:
        attrs[GA.GEN_AI_USAGE_OUTPUT_TOKENS] = inv.output_tokens
    if error_type is not None:
        attrs[error_attributes.ERROR_TYPE] = error_type
    if inv.input_messages:
        attrs[GA.GEN_AI_INPUT_MESSAGES] = truncate_messages(inv.input_messages, limit)
    if inv.system_instructions:
        attrs[GA.GEN_AI_SYSTEM_INSTRUCTIONS] = truncate_parts(inv.system_instructions, limit)
    if inv.tool_definitions:
        attrs[GA.GEN_AI_TOOL_DEFINITIONS] = inv.tool_definitions
    if inv.output_messages:
        attrs[GA.GEN_AI_OUTPUT_MESSAGES] = truncate_messages(inv.output_messages, limit)
    emit_event(inv.handler.logger, EVENT_INFERENCE_DETAILS, attrs, inv.span, inv.payload)
