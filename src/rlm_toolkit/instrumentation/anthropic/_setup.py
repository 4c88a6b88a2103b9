"""Instrument-time decisions for the ``anthropic`` SDK: the pipeline owner, then patch."""

from __future__ import annotations

from typing import Any

from rlm_toolkit.genai import TelemetryHandler, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._semconv import resolve_conventions
from rlm_toolkit.genai._stream_usage import resolve_export_tokens
from rlm_toolkit.instrumentation.anthropic._targets import unwrap_all, wrap_all
from rlm_toolkit.instrumentation.anthropic._wrappers import PROVIDER

SCOPE = "rlm_toolkit.instrumentation.anthropic"


def _cost_function() -> Any:
    try:
        from rlm_toolkit.genai._cost import CostEstimator

        return CostEstimator()
    except ImportError:
        return None


def build_handler(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
) -> TelemetryHandler:
    """The pipeline owner of an ``anthropic`` instrumentation over these providers (``None``:
    the global ones). ``ValueError`` for a nonsense ``capture_content`` or ``semconv``."""
    return TelemetryHandler(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        content=resolve_content_mode(capture_content),
        max_length=resolve_max_length(),
        provider_name=PROVIDER,
        cost=_cost_function(),
        scope_name=SCOPE,
        conventions=resolve_conventions(semconv),
        export_tokens=resolve_export_tokens(),
    )


def sibling(handler: TelemetryHandler) -> TelemetryHandler:
    """A handler for ``anthropic`` calls beside ``handler`` (the ``openai`` one of the same
    ``instrument()`` call): the same providers -- so the callback processors attached there see
    these calls too, attached once -- content policy, conventions and cost, under this
    package's instrumentation scope. It owns nothing: closing ``handler`` closes the pipeline."""
    return TelemetryHandler(
        tracer_provider=handler.tracer_provider,
        meter_provider=handler.meter_provider,
        logger_provider=handler.logger_provider,
        content=handler.content,
        max_length=handler.max_length,
        provider_name=PROVIDER,
        cost=handler.cost,
        scope_name=SCOPE,
        conventions=handler.conventions,
        export_tokens=handler.export_tokens,
    )


def instrument_anthropic(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
    handler: TelemetryHandler | None = None,
    **_: Any,
) -> TelemetryHandler:
    """Patch the SDK so its calls report through ``handler`` (built from the other arguments
    when not given); returns the handler, held until :func:`uninstrument_anthropic`."""
    if handler is None:
        handler = build_handler(tracer_provider, meter_provider, logger_provider, capture_content, semconv)
    wrap_all(handler)
    return handler


def uninstrument_anthropic(handler: TelemetryHandler | None) -> None:
    """Remove every patch and close ``handler``."""
    unwrap_all()
    if handler is not None:
        handler.close()
