"""``rlm_toolkit.instrument()`` / ``rlm_toolkit.uninstrument()``: the library entrance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from rlm_toolkit.genai import ContentMode, Telemetry, resolve_content_mode
from rlm_toolkit.genai._semconv import resolve_conventions
from rlm_toolkit.genai._stream_usage import resolve_stream_usage
from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

__all__ = ["active_telemetry", "ensure_instrumented", "instrument", "uninstrument"]

_PROVIDER_METHODS = (
    ("tracer_provider", "get_tracer"),
    ("meter_provider", "get_meter"),
    ("logger_provider", "get_logger"),
)


def _check_providers(given: dict[str, Any]) -> None:
    """One-line ``TypeError`` for a provider argument that is not a provider (before patching)."""
    for name, method in _PROVIDER_METHODS:
        value = given[name]
        if value is not None and not callable(getattr(value, method, None)):
            raise TypeError(
                f"instrument({name}=...): expected an OpenTelemetry {name.replace('_', ' ')} "
                f"(an object with .{method}()) or None, got {type(value).__name__} {value!r:.80}"
            )


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    capture_content: bool | str | None = None,
    callbacks: Sequence[Any] | None = None,
    semconv: str | None = None,
    stream_usage: bool | None = None,
) -> None:
    """Instrument the ``openai`` SDK in this process.

    Providers default to the global ones. ``capture_content``: ``True``/``False`` or one of
    ``span_only``, ``event_only``, ``span_and_event``, ``no_content`` (default: from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, off when unset). ``callbacks``:
    process-wide callbacks, fed by SDK processors on the same providers (a private in-process
    pair when no SDK provider is configured). Calling it again while instrumented is a no-op,
    except that it replaces an *implicit* instrumentation (made by ``RLM`` through
    :func:`ensure_instrumented` with the default providers) with one using these arguments.

    ``semconv``: ``"v1.41"`` (default) or ``"latest"``, the GenAI convention names to emit
    (default: ``latest`` when ``OTEL_SEMCONV_STABILITY_OPT_IN`` lists
    ``gen_ai_latest_experimental``). ``stream_usage``: ask for token usage on streamed chat
    calls that do not, without changing the chunks the app sees (default: ``RLM_STREAM_USAGE``,
    off). Both raise ``ValueError`` for a bad value before anything changes.
    """
    _check_providers(
        {
            "tracer_provider": tracer_provider,
            "meter_provider": meter_provider,
            "logger_provider": logger_provider,
        }
    )
    mode: ContentMode = resolve_content_mode(capture_content)  # ValueError before any change
    conventions = resolve_conventions(semconv)
    usage = resolve_stream_usage(stream_usage)
    if callbacks is not None:
        from rlm_toolkit.callbacks._bridge import (
            ensure_pipeline,
            set_global_callbacks,
            validate_callbacks,
        )

        validated = validate_callbacks(callbacks)
        pipeline = ensure_pipeline(tracer_provider, logger_provider)
        tracer_provider = pipeline.tracer_provider
        logger_provider = pipeline.logger_provider
        set_global_callbacks(validated)
    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        capture_content=mode,
        semconv=conventions,
        stream_usage=usage,
    )


def ensure_instrumented() -> bool:
    """Instrument ``openai`` with the default (global) providers unless someone already did.

    For code that needs the SDK instrumented but has no providers of its own to impose (the
    ``RLM`` runtime). The instrumentation is marked *implicit*: a later explicit
    :func:`instrument` replaces it. Returns True when this call instrumented.
    """
    return bool(OpenAIInstrumentor().instrument_implicitly())


def active_telemetry() -> Telemetry | None:
    """What the active ``openai`` instrumentation reports with (tracer, logger, content mode...),
    or None when ``openai`` is not instrumented by us."""
    if not OpenAIInstrumentor().is_instrumented_by_opentelemetry:
        return None
    from rlm_toolkit.instrumentation.openai._setup import ACTIVE

    return ACTIVE[0] if ACTIVE else None


def uninstrument() -> None:
    """Remove every patch ``instrument()`` made and drop process-wide callbacks."""
    OpenAIInstrumentor().uninstrument()
    try:
        from rlm_toolkit.callbacks._bridge import set_global_callbacks
    except ImportError:
        return
    set_global_callbacks(())
