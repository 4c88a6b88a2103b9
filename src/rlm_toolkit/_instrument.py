"""``rlm_toolkit.instrument()`` / ``rlm_toolkit.uninstrument()``: the library entrance."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# Nothing of an SDK's instrumentation is imported with this module: ``import rlm_toolkit`` and
# ``RLM.from_openai(...)`` stay cheap, and an ``rlm-instrument`` import hook that fires while
# this module is being imported (the app imported ``rlm_toolkit`` first) finds it whole.
if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from rlm_toolkit.genai import TelemetryHandler

__all__ = ["active_handler", "ensure_instrumented", "instrument", "uninstrument"]

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
    """Instrument the ``openai`` and ``anthropic`` SDKs in this process (each when installed;
    an SDK the app has not imported yet is patched when it is, never imported by us).

    Providers default to the global ones. ``capture_content``: ``True``/``False`` or one of
    ``span_only``, ``event_only``, ``span_and_event``, ``no_content`` (default: from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, off when unset). ``callbacks``:
    fed by SDK processors this call attaches to the same providers (a private in-process pair
    when no SDK provider is configured); they see what those providers see, exactly as
    processors you add by hand would. Calling it again while instrumented is a no-op,
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
    from rlm_toolkit.genai import resolve_content_mode
    from rlm_toolkit.genai._discovery import check_processor_discovery
    from rlm_toolkit.genai._semconv import resolve_conventions
    from rlm_toolkit.genai._stream_usage import resolve_stream_usage
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
    from rlm_toolkit.instrumentation.openai._setup import build_handler

    mode = resolve_content_mode(capture_content)  # ValueError before any change
    conventions = resolve_conventions(semconv)  # ValueError before any change
    usage = resolve_stream_usage(stream_usage)
    check_processor_discovery()  # once per process: one warning if the SDK hides its processors
    validated = ()
    if callbacks is not None:
        from rlm_toolkit.callbacks._validate import validate_callbacks

        validated = validate_callbacks(callbacks)
    instrumentor = OpenAIInstrumentor()
    with instrumentor._lock:
        if instrumentor.is_instrumented_by_opentelemetry and not instrumentor.is_implicit:
            instrumentor.instrument()  # BaseInstrumentor keeps the first one (and says so)
            return
        handler = build_handler(tracer_provider, meter_provider, logger_provider, mode, conventions, usage)
        if validated:
            from rlm_toolkit.callbacks._attach import attach_callbacks

            # Callbacks need SDK providers to be fed by: the given/global ones, else a private
            # in-process pair owned by the handler.
            handler = handler.in_process()
            attach_callbacks(handler, validated)
        instrumentor.instrument(handler=handler)
        _instrument_anthropic(handler)


def _anthropic_installed() -> bool:
    """Whether ``anthropic`` can be imported (found without importing it)."""
    if "anthropic" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("anthropic") is not None
    except (ImportError, ValueError):
        return False


def _instrument_anthropic(handler: TelemetryHandler) -> None:
    """Instrument ``anthropic`` (when installed and not instrumented yet) beside ``handler``:
    the same providers, callbacks, content policy and conventions (``_setup.sibling``)."""
    if not _anthropic_installed():
        return
    from rlm_toolkit.instrumentation.anthropic import AnthropicInstrumentor
    from rlm_toolkit.instrumentation.anthropic._setup import sibling

    instrumentor = AnthropicInstrumentor()
    with instrumentor._lock:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(handler=sibling(handler))


def ensure_instrumented() -> bool:
    """Instrument ``openai`` with the default (global) providers unless someone already did.

    For code that needs the SDK instrumented but has no providers of its own to impose (the
    ``RLM`` runtime). The instrumentation is marked *implicit*: a later explicit
    :func:`instrument` replaces it. Returns True when this call instrumented.
    """
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    return bool(OpenAIInstrumentor().instrument_implicitly())


def active_handler() -> TelemetryHandler | None:
    """The pipeline owner of the active ``openai`` instrumentation (its providers, tracer,
    logger, content mode...), or None when ``openai`` is not instrumented by us."""
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    handler: TelemetryHandler | None = OpenAIInstrumentor().handler
    return handler


def uninstrument() -> None:
    """Remove every patch ``instrument()`` made and close its pipeline owner: the callback
    processors ``instrument(callbacks=...)`` attached are detached and shut down."""
    anthropic = sys.modules.get("rlm_toolkit.instrumentation.anthropic")
    if anthropic is not None:
        instrumentor = anthropic.AnthropicInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().uninstrument()
