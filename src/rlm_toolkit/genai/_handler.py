"""``TelemetryHandler``: the one owner of a telemetry pipeline.

A handler owns, for one set of tracer/meter/logger providers, everything a wrapped call needs
to decide: the tracer, meter instruments and logger, the content policy, the cost estimate, and
which in-process consumers are attached to those providers. The instrumentation's wrapper
factories receive one at instrument time; the runtime receives one per ``RLM`` (the
instrumentation's, or one derived for the providers the ``RLM`` was given). Nothing here is a
module global: a test builds its own handler and passes it in.

What the consumers want (a :class:`~rlm_toolkit.genai._context.Payload`, token events) is asked
per call with :meth:`TelemetryHandler.wants`: the handler looks at the processors attached to
its providers right now, so a callback processor added by hand, before or after instrumenting,
is found the same way as one our entrances added.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry._logs import Logger, get_logger, get_logger_provider
from opentelemetry._logs import _internal as _logs_internal
from opentelemetry.metrics import get_meter
from opentelemetry.trace import Link, Span, SpanKind, Tracer, get_tracer

from rlm_toolkit._safety import contain
from rlm_toolkit.genai._content import ContentMode, resolve_content_mode, resolve_max_length
from rlm_toolkit.genai._semconv import DEFAULT as DEFAULT_CONVENTIONS
from rlm_toolkit.genai._semconv import Conventions
from rlm_toolkit.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from rlm_toolkit.genai._instruments import Instruments


class ScopeView(Protocol):
    """What a handler reads of a runtime scope (:class:`~rlm_toolkit.genai._context.Scope`).

    Structural, so this module does not import ``_context`` (which names this handler in its
    ``Scope``): the two modules never import each other.
    """

    @property
    def handler(self) -> object: ...

    @property
    def callbacks(self) -> Sequence[Any]: ...

    @property
    def wants_tokens(self) -> bool: ...


CostFn = Callable[..., "float | None"]


class Consumer:
    """Base of in-process consumers (processors that read the in-process payload).

    A span or log-record processor deriving from it is found by the :class:`TelemetryHandler`
    of the provider it is attached to. ``wants_payload`` and ``wants_tokens`` may change (e.g.
    to False after ``shutdown()``); they are read once per instrumented call.
    """

    #: True when the consumer reads the in-process payload (it has callbacks to feed).
    wants_payload: bool = False
    #: True when the consumer delivers ``rlm.llm.token`` events to someone.
    wants_tokens: bool = False
    #: True for the one processor per provider that delivers a ``Scope``'s callbacks.
    routes_scopes: bool = False
    #: Callbacks this consumer feeds whatever the scope (a router leaves them to it).
    fixed_callbacks: tuple[Any, ...] = ()

    def on_point_event(
        self, name: str, span: Span, attributes: Mapping[str, Any], timestamp: int, payload: Any
    ) -> None:
        """An in-process point event that is not a log record (a streamed token, unless token
        export is on): what ``on_emit`` would get for the record, without the record. Called on
        the producing thread, only on consumers of the handler's logger provider whose
        ``wants_tokens`` (or ``routes_scopes``) is True. ``timestamp``: ns since the epoch;
        ``payload``: the event's in-process ``genai._context.Payload`` (the token's text).
        Must not raise."""


@dataclass(frozen=True)
class Wants:
    """What the consumers of one call want built: a payload, token events."""

    payload: bool = False
    tokens: bool = False


NOTHING = Wants()
_ALL = (Wants(False, False), Wants(False, True), Wants(True, False), Wants(True, True))
_NO_CONSUMERS: tuple[tuple[Consumer, ...], tuple[Consumer, ...]] = ((), ())


_UNREAD = object()


def _global_tracer_provider() -> object:
    """The global tracer provider if one was set, else None. Read from the API module's
    variable when it has one: ``get_tracer_provider()`` costs ~1 µs, and a handler over the
    globals asks on every call until an SDK provider is set."""
    found = getattr(trace, "_TRACER_PROVIDER", _UNREAD)
    return trace.get_tracer_provider() if found is _UNREAD else found


def _global_logger_provider() -> object:
    """As :func:`_global_tracer_provider`, for the logger provider."""
    found = getattr(_logs_internal, "_LOGGER_PROVIDER", _UNREAD)
    return get_logger_provider() if found is _UNREAD else found


#: Where the OpenTelemetry SDK's provider classes live. The SDK is not imported with this module
#: (its logs and trace modules are a sizeable part of ``import rlm_toolkit`` + ``RLM(...)``):
#: a provider is an SDK one only if the SDK module is loaded, since nothing else can make one.
_SDK_TRACE = "opentelemetry.sdk.trace"
_SDK_LOGS = "opentelemetry.sdk._logs"


def _is_sdk(provider: object, module: str, name: str) -> bool:
    """``isinstance(provider, <module>.<name>)`` without importing ``module``."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return cls is not None and isinstance(provider, cls)


def span_processors_of(provider: object) -> tuple[Any, ...]:
    """The span processors attached to an SDK ``TracerProvider`` right now (``()`` otherwise).

    The SDK has no public listing; its multi-processor keeps them in a tuple it replaces (under
    its lock) on every ``add_span_processor``, so one read sees a consistent set and the tuple's
    identity tells whether it changed.
    """
    try:
        procs = provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    except AttributeError:  # an SDK that keeps them elsewhere: no consumer can be found
        return ()
    return procs if type(procs) is tuple else ()


def log_processors_of(provider: object) -> tuple[Any, ...]:
    """The log-record processors attached to an SDK ``LoggerProvider`` (see above)."""
    try:
        procs = provider._multi_log_record_processor._log_record_processors  # type: ignore[attr-defined]
    except AttributeError:
        return ()
    return procs if type(procs) is tuple else ()


class TelemetryHandler:
    """The owner of one pipeline: providers, tracer, logger, instruments, content policy.

    Built once per instrumentation (``OpenAIInstrumentor.instrument``), or derived with
    :meth:`derive` for the providers an ``RLM`` brings. Thread-safe: what is not set at
    construction is either a cache replaced as one value (the consumers found, a global provider
    once it is an SDK one) or changed under the handler's lock (processors it attached, its
    private pair). :meth:`wants` runs on the app's thread, once per call; it never raises.
    :meth:`close` (called by ``uninstrument()``) detaches the processors this handler attached.

    Args:
        tracer_provider, meter_provider, logger_provider: the providers (``None``: the global
            ones, looked up when first needed, as the OTel API does).
        content: the content-capture policy for export (in-process consumers see content
            whatever it is).
        provider_name: ``gen_ai.provider.name`` of the calls.
        cost: ``cost(model, input_tokens=, output_tokens=, cached_input_tokens=)`` or None.
        scope_name, schema_url: the instrumentation scope of the tracer, meter and logger
            (``schema_url`` defaults to the conventions' own).
        conventions: which GenAI convention names to emit (``genai/_semconv.py``).
        stream_usage: ask for usage on streamed chat calls that do not (opt-in).
        export_tokens: emit streamed tokens as exported Logs-API records too (opt-in); by
            default :meth:`deliver_point_event` hands them to in-process consumers only.
    """

    __slots__ = (
        "_consumer_cache",
        "_lock",
        "_logger_sdk",
        "_own_providers",
        "_owned",
        "_private",
        "_tracer_sdk",
        "content",
        "conventions",
        "cost",
        "export_tokens",
        "instruments",
        "logger",
        "logger_provider",
        "max_length",
        "meter_provider",
        "provider_name",
        "schema_url",
        "scope_name",
        "stream_usage",
        "tracer",
        "tracer_provider",
    )

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
        content: ContentMode | None = None,
        max_length: int | None = None,
        provider_name: str = "",
        cost: CostFn | None = None,
        scope_name: str = "rlm_toolkit",
        schema_url: str | None = None,
        instruments: Instruments | None = None,
        conventions: Conventions | None = None,
        stream_usage: bool = False,
        export_tokens: bool = False,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.scope_name = scope_name
        #: Which GenAI convention names to emit (resolved once, see ``_semconv``); its schema
        #: URL is the scope's unless one is given.
        self.conventions = conventions if conventions is not None else DEFAULT_CONVENTIONS
        #: Opt-in: ask for usage on streamed chat calls and hide the extra chunk from the app.
        self.stream_usage = stream_usage
        #: Opt-in: streamed tokens also become exported ``rlm.llm.token`` records.
        self.export_tokens = export_tokens
        self.schema_url = schema_url if schema_url is not None else self.conventions.schema_url
        self.tracer: Tracer = get_tracer(scope_name, __version__, tracer_provider, schema_url=self.schema_url)
        self.logger: Logger = get_logger(
            scope_name, __version__, logger_provider=logger_provider, schema_url=self.schema_url
        )
        if instruments is None:  # imported here: building an RLM makes no handler
            from rlm_toolkit.genai._instruments import Instruments

            instruments = Instruments(
                get_meter(scope_name, __version__, meter_provider, schema_url=self.schema_url),
                self.conventions,
            )
        self.instruments: Instruments = instruments
        self.content = content if content is not None else resolve_content_mode()
        self.max_length = max_length if max_length is not None else resolve_max_length()
        self.provider_name = provider_name
        self.cost = cost
        self._tracer_sdk: TracerProvider | None = (
            tracer_provider if _is_sdk(tracer_provider, _SDK_TRACE, "TracerProvider") else None
        )
        self._logger_sdk: LoggerProvider | None = (
            logger_provider if _is_sdk(logger_provider, _SDK_LOGS, "LoggerProvider") else None
        )
        self._lock = threading.RLock()
        # (span processor tuple, log processor tuple) last seen, and the consumers in them.
        # (span processor tuple, log processor tuple, the consumers in them), as one tuple so
        # a racing reader sees an old or a new entry, never a mix.
        self._consumer_cache: tuple[object, object, tuple[tuple[Consumer, ...], tuple[Consumer, ...]]] = (
            None,
            None,
            _NO_CONSUMERS,
        )
        self._owned: list[tuple[object, object]] = []  # (provider, processor) we attached
        # ((SDK tracer provider, SDK logger provider) it was made for, the in-process handler)
        self._private: tuple[object, object, TelemetryHandler] | None = None
        #: Providers this handler made (a private pair) and shuts down on close().
        self._own_providers: tuple[Any, ...] = ()

    # -- providers ---------------------------------------------------------------------------

    def sdk_tracer_provider(self) -> TracerProvider | None:
        """The SDK tracer provider spans go to (the given one, else the global one if it is an
        SDK provider), or None (a no-op or foreign provider: no in-process consumer can be on it)."""
        tp = self._tracer_sdk
        if tp is None and self.tracer_provider is None:
            found = _global_tracer_provider()
            if found is not None and _is_sdk(
                found, _SDK_TRACE, "TracerProvider"
            ):  # the global provider is set once: keep it
                self._tracer_sdk = tp = found  # type: ignore[assignment]
        return tp

    def sdk_logger_provider(self) -> LoggerProvider | None:
        """As :meth:`sdk_tracer_provider`, for event records."""
        lp = self._logger_sdk
        if lp is None and self.logger_provider is None:
            found = _global_logger_provider()
            if found is not None and _is_sdk(found, _SDK_LOGS, "LoggerProvider"):
                self._logger_sdk = lp = found  # type: ignore[assignment]
        return lp

    def derive(self, tracer_provider: Any = None, logger_provider: Any = None) -> TelemetryHandler:
        """A handler for other tracer/logger providers that shares this one's instruments,
        content policy and cost estimate (``None`` keeps this handler's provider)."""
        return TelemetryHandler(
            tracer_provider=tracer_provider if tracer_provider is not None else self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=logger_provider if logger_provider is not None else self.logger_provider,
            content=self.content,
            max_length=self.max_length,
            provider_name=self.provider_name,
            cost=self.cost,
            scope_name=self.scope_name,
            schema_url=self.schema_url,
            instruments=self.instruments,
            conventions=self.conventions,
            stream_usage=self.stream_usage,
            export_tokens=self.export_tokens,
        )

    def in_process(self) -> TelemetryHandler:
        """This handler when both its providers are SDK ones; else a handler over a private
        in-process pair (sampling everything, exporting nothing) that only feeds callbacks.

        The private providers are made once (again only if this handler's SDK providers change,
        e.g. the app sets a global one later); the returned handler owns them and shuts them
        down on :meth:`close`, which this handler's :meth:`close` calls.
        """
        tp, lp = self.sdk_tracer_provider(), self.sdk_logger_provider()
        if tp is not None and lp is not None:
            return self
        with self._lock:
            private = self._private
            if private is not None and private[0] is tp and private[1] is lp:
                return private[2]
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.sampling import ALWAYS_ON

            resource = Resource.get_empty()
            made: list[Any] = []
            if tp is None:
                tp_made = TracerProvider(sampler=ALWAYS_ON, resource=resource)
                made.append(tp_made)
            if lp is None:
                lp_made = LoggerProvider(resource=resource)
                made.append(lp_made)
            handler = self.derive(tp if tp is not None else tp_made, lp if lp is not None else lp_made)
            handler._own_providers = tuple(made)
            if private is not None:
                private[2].close()
            self._private = (tp, lp, handler)
            return handler

    # -- agent and tool spans -------------------------------------------------------------------

    def start_agent_span(
        self, name: str, attributes: Mapping[str, Any], links: Sequence[Link] | None = None
    ) -> Span:
        """Start an agent-run span (kind INTERNAL, a child of the current span) with this
        handler's tracer; ``links``: spans the run relates to (e.g. an eval's). The caller ends
        it exactly once. Called on the run's thread; raises only what the tracer raises."""
        return self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes, links=links)

    def start_tool_span(self, name: str, attributes: Mapping[str, Any]) -> Span:
        """Start a tool-execution span (kind INTERNAL, a child of the current span) with this
        handler's tracer. The caller ends it exactly once."""
        return self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)

    # -- consumers ---------------------------------------------------------------------------

    def consumers(self) -> tuple[tuple[Consumer, ...], tuple[Consumer, ...]]:
        """The in-process consumers attached to this handler's (span, log) providers now."""
        tp, lp = self._tracer_sdk, self._logger_sdk  # the hot path: two slot reads once resolved
        if tp is None:
            tp = self.sdk_tracer_provider()
        if lp is None:
            lp = self.sdk_logger_provider()
        try:  # span_processors_of / log_processors_of, inlined: this runs on every call
            spans = tp._active_span_processor._span_processors if tp is not None else ()  # type: ignore[attr-defined]
        except AttributeError:
            spans = ()
        try:
            logs = lp._multi_log_record_processor._log_record_processors if lp is not None else ()  # type: ignore[attr-defined]
        except AttributeError:
            logs = ()
        cache = self._consumer_cache
        if spans is cache[0] and logs is cache[1]:
            return cache[2]
        found = (
            tuple(p for p in spans if isinstance(p, Consumer)) if type(spans) is tuple else (),
            tuple(p for p in logs if isinstance(p, Consumer)) if type(logs) is tuple else (),
        )
        self._consumer_cache = (spans, logs, found)
        return found

    def wants(self, scope: ScopeView | None = None) -> Wants:
        """What the consumers of one call made now want built (asked once per call).

        ``scope``: the runtime scope the call runs in, whose callbacks are consumers too.
        Costs two attribute reads and an identity check when nothing changed.
        """
        span_side, log_side = self.consumers()
        if scope is None and not span_side and not log_side:
            return NOTHING
        payload = tokens = False
        for consumer in span_side:  # loops, not any(<genexpr>): no generator per call
            if consumer.wants_payload:
                payload = True
                break
        for consumer in log_side:
            payload = payload or consumer.wants_payload
            tokens = tokens or consumer.wants_tokens
        if scope is not None and scope.handler is self and scope.callbacks:
            payload = True
            tokens = tokens or scope.wants_tokens
        return _ALL[payload * 2 + tokens]

    def deliver_point_event(self, name: str, attributes: Mapping[str, Any], span: Span, payload: Any) -> None:
        """Hand an in-process-only event (a streamed token) to the consumers on this handler's
        logger provider that want tokens (and its scope router), without making a log record: an in-process need
        costs the backend nothing. On the producing thread; never raises."""
        timestamp = time.time_ns()
        for consumer in self.consumers()[1]:
            # A scope router delivers the scope's callbacks, which want tokens when it asked.
            if consumer.wants_tokens or consumer.routes_scopes:
                try:
                    consumer.on_point_event(name, span, attributes, timestamp, payload)
                except Exception as exc:
                    contain("telemetry handler: deliver an in-process event", exc)

    def find_router(self) -> tuple[Consumer | None, Consumer | None]:
        """The (span, log) processors on this handler's providers that deliver scopes' callbacks."""
        span_side, log_side = self.consumers()
        span_router = next((c for c in span_side if c.routes_scopes), None)
        log_router = next((c for c in log_side if c.routes_scopes), None)
        return span_router, log_router

    def attach(self, span_processor: Consumer | None, log_processor: Consumer | None) -> None:
        """Add processors to this handler's SDK providers; :meth:`close` removes them again."""
        with self._lock:
            tp, lp = self.sdk_tracer_provider(), self.sdk_logger_provider()
            if span_processor is not None and tp is not None:
                tp.add_span_processor(span_processor)  # type: ignore[arg-type]
                self._owned.append((tp, span_processor))
            if log_processor is not None and lp is not None:
                lp.add_log_record_processor(log_processor)  # type: ignore[arg-type]
                self._owned.append((lp, log_processor))

    def close(self) -> None:
        """Detach and shut down the processors this handler attached; shut down its private
        in-process providers. Idempotent; never raises."""
        with self._lock:
            owned, self._owned = self._owned, []
            private, self._private = self._private, None
            made, self._own_providers = self._own_providers, ()
        for provider, processor in owned:
            try:
                _detach(provider, processor)
                processor.shutdown()  # type: ignore[attr-defined]
            except Exception as exc:
                contain("telemetry handler: detach a processor", exc)
        if private is not None:
            private[2].close()
        for provider in made:
            try:
                provider.shutdown()
            except Exception as exc:
                contain("telemetry handler: shut down the private providers", exc)


def _detach(provider: object, processor: object) -> None:
    """Remove ``processor`` from an SDK provider (the SDK has no public way to do it): rebuild
    its multi-processor's tuple without it, under the multi-processor's own lock."""
    for attr, field in (
        ("_active_span_processor", "_span_processors"),
        ("_multi_log_record_processor", "_log_record_processors"),
    ):
        multi = getattr(provider, attr, None)
        if multi is None:
            continue
        with multi._lock:
            procs = getattr(multi, field)
            setattr(multi, field, tuple(p for p in procs if p is not processor))
