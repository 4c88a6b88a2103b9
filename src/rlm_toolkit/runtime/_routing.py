"""Where one run reports: its pipeline owner (a ``TelemetryHandler``) and its scope.

Resolved per run, not at ``RLM(...)`` construction, because the app may set its global
providers or call ``rlm_toolkit.instrument(...)`` after building an ``RLM`` (e.g. a module-level
one):

* The base handler is the one the app's explicit ``rlm_toolkit.instrument()`` made (the
  providers given to it, its content mode), read through the ``follow`` function the ``RLM``
  passes in (the composition root ``rlm_toolkit._providers.instrumented_handler``: this package
  imports nothing from the instrumentation), else one over the global providers (content mode
  from the environment).
* Providers the ``RLM`` was given replace the base handler's (``TelemetryHandler.derive``:
  same instruments, content policy and cost estimate). With callbacks, the handler must feed
  in-process processors: ``in_process()`` swaps a provider that is not an SDK one for a private
  pair, and ``ensure_router`` makes sure the providers carry the processor pair that delivers
  a scope's callbacks.
* The run's handler is cached keyed on the identity of the base handler and of the providers
  it resolved to, and rebuilt only when one of them changes.

The run span, its LLM calls (through ``Scope.handler``) and the callbacks all follow the one
handler, so the run tree lands in one provider and one capture decision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import ContentMode, Scope, TelemetryHandler, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._cost import CostEstimator
from rlm_toolkit.genai._discovery import check_processor_discovery
from rlm_toolkit.genai._semconv import resolve_conventions
from rlm_toolkit.genai._stream_usage import resolve_export_tokens, resolve_stream_usage

#: The instrumentation scope of what an ``RLM`` reports with no instrumentation to follow.
_SCOPE = "rlm_toolkit.runtime"


def _no_instrumentation() -> TelemetryHandler | None:
    return None


_DEFAULTS: dict[ContentMode, TelemetryHandler] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_handler(mode: ContentMode) -> TelemetryHandler:
    """The handler over the global providers for content ``mode``, with the bundled prices and
    the environment's conventions (what ``rlm_toolkit.instrument()`` would build). Shared by
    every ``RLM`` without one of its own: a memo of one object per mode, not routing state
    (it always reports to the global providers of the moment)."""
    handler = _DEFAULTS.get(mode)
    if handler is None:
        with _DEFAULTS_LOCK:
            handler = _DEFAULTS.get(mode)
            if handler is None:
                handler = _DEFAULTS[mode] = TelemetryHandler(
                    content=mode,
                    max_length=resolve_max_length(),
                    cost=CostEstimator(),
                    scope_name=_SCOPE,
                    conventions=resolve_conventions(None),
                    stream_usage=resolve_stream_usage(None),
                    export_tokens=resolve_export_tokens(),
                )
    return handler


class Routing:
    """One ``RLM``'s callbacks and providers, turned into a handler and a scope for each run.

    Thread-safe: a run reads the cache as one tuple; a rebuild happens under a lock.
    """

    __slots__ = (
        "_cached",
        "_fallback",
        "_follow",
        "_lock",
        "_logger_provider",
        "_tracer_provider",
        "callbacks",
        "wants_tokens",
    )

    def __init__(
        self,
        callbacks: Sequence[Any] | None,
        tracer_provider: Any,
        logger_provider: Any,
        follow: Callable[[], TelemetryHandler | None] = _no_instrumentation,
    ) -> None:
        """``callbacks``, ``tracer_provider``, ``logger_provider``: what the ``RLM`` was given;
        ``follow``: returns the handler of the app's explicit instrumentation, or None (asked
        once per run, on the run's thread; an exception is contained and counts as None)."""
        from rlm_toolkit.callbacks._validate import validate_callbacks, wants_tokens

        self.callbacks: tuple[Any, ...] = validate_callbacks(callbacks or ())
        if self.callbacks:
            check_processor_discovery()  # once per process: one warning if it cannot work
        self.wants_tokens = wants_tokens(self.callbacks)
        self._tracer_provider = tracer_provider
        self._logger_provider = logger_provider
        self._follow = follow
        self._lock = threading.Lock()
        self._fallback: TelemetryHandler | None = None
        # ((base handler, its SDK tracer provider, its SDK logger provider), handler, scope)
        self._cached: tuple[tuple[object, ...], TelemetryHandler, Scope | None] | None = None
        if self.has_scope:
            self.resolve()  # attach the routing processors now: an early error, a warm cache

    @property
    def has_scope(self) -> bool:
        return bool(self.callbacks) or self._tracer_provider is not None or self._logger_provider is not None

    def _base(self) -> TelemetryHandler:
        try:
            base = self._follow()
        except Exception as exc:
            contain("runtime: read the app's instrumentation", exc)
            base = None
        if base is not None:
            return base
        # Not instrumented: the environment decides the capture, read at each run.
        mode = resolve_content_mode()
        fallback = self._fallback
        if fallback is None or fallback.content != mode:
            self._fallback = fallback = default_handler(mode)
        return fallback

    def resolve(self) -> tuple[TelemetryHandler, Scope | None]:
        """This run's handler, and its scope (None without callbacks or explicit providers:
        the run then leaves an enclosing scope in place)."""
        base = self._base()
        key = (base, base.sdk_tracer_provider(), base.sdk_logger_provider())
        cached = self._cached
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1], cached[2]
        if not self.has_scope:
            self._cached = (key, base, None)
            return base, None
        with self._lock:
            handler = base
            if self._tracer_provider is not None or self._logger_provider is not None:
                handler = base.derive(self._tracer_provider, self._logger_provider)
            if self.callbacks:
                from rlm_toolkit.callbacks._attach import ensure_router

                handler = handler.in_process()
                ensure_router(handler)
            scope = Scope(handler=handler, callbacks=self.callbacks, wants_tokens=self.wants_tokens)
            self._cached = (key, handler, scope)
        return handler, scope
