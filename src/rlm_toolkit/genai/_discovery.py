"""Finding in-process consumers on SDK providers: checked once, never failing silently.

The OpenTelemetry SDK has no public listing of a provider's processors, so the handler reads
two private attributes (``TracerProvider._active_span_processor._span_processors`` and
``LoggerProvider._multi_log_record_processor._log_record_processors``, see
``_handler.span_processors_of``). If an SDK release renames them, discovery finds nothing and
callbacks would silently lose their content. :func:`check_processor_discovery` proves the
reads on fresh SDK providers when instrumenting (once per process) and logs one clear warning
naming the missing attribute when they fail.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

_log = logging.getLogger("rlm_toolkit")

#: (provider kind, attribute path) the handler reads.
SPAN_PATH = ("_active_span_processor", "_span_processors")
LOG_PATH = ("_multi_log_record_processor", "_log_record_processors")


@functools.cache
def _probes() -> tuple[type, type]:
    """The no-op probe processor classes (made on first use: the OpenTelemetry SDK is imported
    when discovery is checked, not with ``rlm_toolkit.genai``)."""
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace import SpanProcessor

    class _ProbeSpans(SpanProcessor):  # type: ignore[misc]
        pass

    class _ProbeLogs(LogRecordProcessor):  # type: ignore[misc]
        def on_emit(self, log_record: Any) -> None:
            return None

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return _ProbeSpans, _ProbeLogs


def _found(provider: object, path: tuple[str, str], probe: object) -> str | None:
    """None when ``probe`` is listed at ``path`` on ``provider``, else what is wrong."""
    multi = getattr(provider, path[0], None)
    if multi is None:
        return f"{type(provider).__name__}.{path[0]} is missing"
    procs = getattr(multi, path[1], None)
    if type(procs) is not tuple:
        return f"{type(provider).__name__}.{path[0]}.{path[1]} is missing or not a tuple"
    if probe not in procs:
        return f"{type(provider).__name__}.{path[0]}.{path[1]} does not list an added processor"
    return None


def discovery_problems(tracer_provider: Any = None, logger_provider: Any = None) -> list[str]:
    """What prevents finding processors on these SDK providers (fresh ones by default); ``[]``
    when discovery works. Adds a no-op probe processor to each provider it is given."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.trace import TracerProvider

    problems: list[str] = []
    made = []
    if tracer_provider is None:
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        made.append(tracer_provider)
    if logger_provider is None:
        logger_provider = LoggerProvider(shutdown_on_exit=False)
        made.append(logger_provider)
    probe_spans, probe_logs = _probes()
    spans, logs = probe_spans(), probe_logs()
    tracer_provider.add_span_processor(spans)
    logger_provider.add_log_record_processor(logs)
    for problem in (_found(tracer_provider, SPAN_PATH, spans), _found(logger_provider, LOG_PATH, logs)):
        if problem is not None:
            problems.append(problem)
    for provider in made:
        provider.shutdown()
    return problems


@functools.cache
def check_processor_discovery() -> tuple[str, ...]:
    """Check :func:`discovery_problems` once per process; log one warning if any. Never raises."""
    try:
        problems = tuple(discovery_problems())
    except Exception as exc:  # an SDK too different to even build: say so once, go on
        problems = (f"checking failed: {type(exc).__name__}: {exc}",)
    if problems:
        _log.warning(
            "rlm_toolkit: cannot find callback processors on this opentelemetry-sdk (%s); "
            "callbacks will get no prompt/completion content. Install the opentelemetry-sdk "
            "version rlm_toolkit was tested with, or report this.",
            "; ".join(problems),
        )
    return problems
