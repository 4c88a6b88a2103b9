"""Instrument-time decisions: providers, instruments, content mode, pricing; then patch."""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import get_logger
from opentelemetry.metrics import get_meter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import get_tracer

from rlm_toolkit.genai import Instruments, Telemetry, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._invocation import CostFn
from rlm_toolkit.genai._semconv import resolve_conventions
from rlm_toolkit.genai._stream_usage import resolve_stream_usage
from rlm_toolkit.instrumentation.openai._targets import wrap_all
from rlm_toolkit.version import __version__

_SCOPE = "rlm_toolkit.instrumentation.openai"


def _cost_function() -> CostFn | None:
    try:
        from rlm_toolkit.genai._cost import CostEstimator

        fn: CostFn = CostEstimator()
    except ImportError:
        return None
    return fn


def build_telemetry(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
    stream_usage: Any = None,
) -> Telemetry:
    # Convention mode and stream usage are read here, once (argument, else environment).
    conventions = resolve_conventions(semconv)
    schema_url = conventions.schema_url
    meter = get_meter(_SCOPE, __version__, meter_provider, schema_url=schema_url)
    return Telemetry(
        tracer=get_tracer(_SCOPE, __version__, tracer_provider, schema_url=schema_url),
        logger=get_logger(_SCOPE, __version__, logger_provider=logger_provider, schema_url=schema_url),
        instruments=Instruments(meter, conventions),
        content=resolve_content_mode(capture_content),
        max_length=resolve_max_length(),
        provider_name=GA.GenAiProviderNameValues.OPENAI.value,
        cost=_cost_function(),
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        conventions=conventions,
        stream_usage=resolve_stream_usage(stream_usage),
    )


#: The telemetry of the active instrumentation (None when not instrumented).
ACTIVE: list[Telemetry] = []


def instrument_openai(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: Any = None,
    semconv: Any = None,
    stream_usage: Any = None,
    **_: Any,
) -> None:
    telemetry = build_telemetry(
        tracer_provider, meter_provider, logger_provider, capture_content, semconv, stream_usage
    )
    ACTIVE[:] = [telemetry]
    wrap_all(telemetry)


def uninstrument_openai() -> None:
    from rlm_toolkit.instrumentation.openai._targets import unwrap_all

    ACTIVE.clear()
    unwrap_all()
