"""Instrument-time decisions: the pipeline owner (providers, instruments, content mode,
pricing), then patch."""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.genai import TelemetryHandler, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._handler import CostFn
from rlm_toolkit.genai._semconv import resolve_conventions
from rlm_toolkit.genai._stream_usage import resolve_export_tokens, resolve_stream_usage
from rlm_toolkit.instrumentation.openai._targets import unwrap_all, wrap_all

_SCOPE = "rlm_toolkit.instrumentation.openai"


def _cost_function() -> CostFn | None:
    try:
        from rlm_toolkit.genai._cost import CostEstimator

        fn: CostFn = CostEstimator()
    except ImportError:
        return None
    return fn


def build_handler(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
    stream_usage: Any = None,
) -> TelemetryHandler:
    """The pipeline owner of an ``openai`` instrumentation over these providers (``None``: the
    global ones). The convention mode and stream usage are read here, once (argument, else
    environment). ``ValueError`` for a nonsense ``capture_content``, ``semconv`` or
    ``stream_usage``."""
    conventions = resolve_conventions(semconv)
    return TelemetryHandler(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        content=resolve_content_mode(capture_content),
        max_length=resolve_max_length(),
        provider_name=GA.GenAiProviderNameValues.OPENAI.value,
        cost=_cost_function(),
        scope_name=_SCOPE,
        conventions=conventions,
        stream_usage=resolve_stream_usage(stream_usage),
        export_tokens=resolve_export_tokens(),
    )


def instrument_openai(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
    stream_usage: Any = None,
    handler: TelemetryHandler | None = None,
    **_: Any,
) -> TelemetryHandler:
    """Patch the SDK so its calls report through ``handler`` (built from the other arguments
    when not given); returns the handler, which the caller holds until :func:`uninstrument_openai`."""
    if handler is None:
        handler = build_handler(
            tracer_provider, meter_provider, logger_provider, capture_content, semconv, stream_usage
        )
    wrap_all(handler)
    return handler


def uninstrument_openai(handler: TelemetryHandler | None) -> None:
    """Remove every patch and close ``handler`` (detaching the processors it attached)."""
    unwrap_all()
    if handler is not None:
        handler.close()
