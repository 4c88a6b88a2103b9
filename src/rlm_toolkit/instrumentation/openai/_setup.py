"""Instrument-time decisions: the pipeline owner (providers, instruments, content mode,
pricing), then patch."""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.schemas import Schemas

from rlm_toolkit.genai import TelemetryHandler, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._handler import CostFn
from rlm_toolkit.instrumentation.openai._targets import unwrap_all, wrap_all

_SCOPE = "rlm_toolkit.instrumentation.openai"


def _cost_function() -> CostFn | None:
    try:
        from rlm_toolkit.genai._cost import CostEstimator

        fn: CostFn = CostEstimator()
    except ImportError:
        return None
    return fn


def _schema_url() -> str:
    latest = max(Schemas, key=lambda s: tuple(int(p) for p in s.value.rsplit("/", 1)[-1].split(".")))
    return str(latest.value)


def build_handler(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
) -> TelemetryHandler:
    """The pipeline owner of an ``openai`` instrumentation over these providers (``None``: the
    global ones). ``ValueError`` for a nonsense ``capture_content``."""
    return TelemetryHandler(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        content=resolve_content_mode(capture_content),
        max_length=resolve_max_length(),
        provider_name=GA.GenAiProviderNameValues.OPENAI.value,
        cost=_cost_function(),
        scope_name=_SCOPE,
        schema_url=_schema_url(),
    )


def instrument_openai(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    handler: TelemetryHandler | None = None,
    **_: Any,
) -> TelemetryHandler:
    """Patch the SDK so its calls report through ``handler`` (built from the other arguments
    when not given); returns the handler, which the caller holds until :func:`uninstrument_openai`."""
    if handler is None:
        handler = build_handler(tracer_provider, meter_provider, logger_provider, capture_content)
    wrap_all(handler)
    return handler


def uninstrument_openai(handler: TelemetryHandler | None) -> None:
    """Remove every patch and close ``handler`` (detaching the processors it attached)."""
    unwrap_all()
    if handler is not None:
        handler.close()
