"""Where one run reports: its scope (callbacks + providers), its run span's tracer, its capture.

Everything here is resolved per run, not at ``RLM(...)`` construction, because the app may set
its global providers or call ``rlm_toolkit.instrument(...)`` after building an ``RLM`` (e.g. a
module-level one):

* With callbacks or explicit providers the run has a :class:`Scope` over an SDK pipeline
  (``callbacks._bridge.ensure_pipeline``). Providers the caller did not give come from the
  active instrumentation (the providers given to ``instrument()``), else from the current
  global ones, so the pipeline is cached keyed on the identity of all of those and rebuilt
  only when one of them changes.
* Without a scope the run span uses the active instrumentation's tracer, so it and the LLM
  spans (which use that same tracer) always land in one provider, as one tree.
* Content capture on the run span follows the active instrumentation's mode (code-level
  ``instrument(capture_content=...)`` included); the environment is read only when ``openai``
  is not instrumented at all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.trace import Tracer

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import Telemetry, resolve_content_mode
from rlm_toolkit.genai._context import Scope
from rlm_toolkit.runtime._run_span import default_tracer


def _active_telemetry() -> Telemetry | None:
    try:
        from rlm_toolkit._instrument import active_telemetry

        return active_telemetry()
    except Exception as exc:
        contain("runtime: read the active instrumentation", exc)
        return None


def capture_on_span() -> bool:
    """True when the run span may carry prompt and answer (capture includes spans)."""
    telemetry = _active_telemetry()
    mode = telemetry.content if telemetry is not None else resolve_content_mode()
    return mode.on_span


class Routing:
    """One ``RLM``'s callbacks and providers, turned into a scope and a tracer for each run."""

    __slots__ = ("_cached", "_lock", "_logger_provider", "_tracer_provider", "callbacks", "wants_tokens")

    def __init__(self, callbacks: Sequence[Any] | None, tracer_provider: Any, logger_provider: Any) -> None:
        from rlm_toolkit.callbacks._bridge import validate_callbacks, wants_tokens

        self.callbacks: tuple[Any, ...] = validate_callbacks(callbacks or ())
        self.wants_tokens = wants_tokens(self.callbacks)
        self._tracer_provider = tracer_provider
        self._logger_provider = logger_provider
        self._lock = threading.Lock()
        # ((global tracer provider, global logger provider, instrumentation's tracer provider,
        # instrumentation's logger provider), the scope built while they were those)
        self._cached: tuple[tuple[object, ...], Scope] | None = None
        if self.has_scope:
            self.scope()  # attach the callback processors now: an early error, a warm cache

    @property
    def has_scope(self) -> bool:
        return bool(self.callbacks) or self._tracer_provider is not None or self._logger_provider is not None

    def scope(self) -> Scope | None:
        """This run's scope (None without callbacks or explicit providers)."""
        if not self.has_scope:
            return None
        telemetry = _active_telemetry()
        key = (
            trace.get_tracer_provider(),
            get_logger_provider(),
            telemetry.tracer_provider if telemetry is not None else None,
            telemetry.logger_provider if telemetry is not None else None,
        )
        cached = self._cached
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1]
        from rlm_toolkit.callbacks._bridge import ensure_pipeline

        tracer_provider = self._tracer_provider if self._tracer_provider is not None else key[2]
        logger_provider = self._logger_provider if self._logger_provider is not None else key[3]
        with self._lock:
            pipeline = ensure_pipeline(tracer_provider=tracer_provider, logger_provider=logger_provider)
            scope = Scope(
                tracer=pipeline.tracer,
                logger=pipeline.logger,
                callbacks=self.callbacks,
                wants_tokens=self.wants_tokens,
            )
            self._cached = (key, scope)
        return scope

    @staticmethod
    def tracer(scope: Scope | None) -> Tracer:
        """The run span's tracer: the scope's, else the instrumentation's, else the global one."""
        if scope is not None and scope.tracer is not None:
            return scope.tracer
        telemetry = _active_telemetry()
        return telemetry.tracer if telemetry is not None else default_tracer()
