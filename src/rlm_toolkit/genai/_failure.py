"""The conventions' WARN record of a failed GenAI client call (latest mode).

``gen_ai.client.operation.exception`` (GenAI repository ``model/gen-ai/events.yaml``): severity
WARN, in the failed span's context, with ``exception.type`` -- never ``exception.message``, which
for a provider error can echo the prompt (content stays opt-in) -- and ``error.type``. The name
comes from the mode's :class:`~rlm_toolkit.genai._semconv.Conventions`; ``None`` (v1.41 mode):
nothing is emitted.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.semconv.attributes import error_attributes, exception_attributes

from rlm_toolkit.attributes import RLM_ERROR_PARAM, RLM_ERROR_PROVIDER_TYPE


def emit_operation_exception(handler: Any, span: trace.Span, exc: BaseException, error_type: str) -> None:
    """Emit the mode's operation-exception record for ``exc`` on ``handler.logger`` (if any)."""
    name = handler.conventions.operation_exception_event
    if name is None:
        return
    exc_type = type(exc)
    handler.logger.emit(
        event_name=name,
        attributes={
            exception_attributes.EXCEPTION_TYPE: f"{exc_type.__module__}.{exc_type.__qualname__}",
            error_attributes.ERROR_TYPE: error_type,
        },
        context=trace.set_span_in_context(span),
        severity_number=SeverityNumber.WARN,
        timestamp=time.time_ns(),
    )


def provider_error_attributes(exc: BaseException, attrs: dict[str, Any]) -> None:
    """The provider's own error ``type`` (``invalid_request_error``...) and ``param`` (the
    request field it blames), as the SDK's error exposes them, into ``attrs`` (both modes:
    no convention names them, ``error.type`` being our class). Short identifiers, no content."""
    for field, key in ((_TYPE_FIELD, RLM_ERROR_PROVIDER_TYPE), (_PARAM_FIELD, RLM_ERROR_PARAM)):
        value = getattr(exc, field, None)
        if isinstance(value, str) and value:
            attrs[key] = value[:256]


_TYPE_FIELD = "type"
_PARAM_FIELD = "param"
