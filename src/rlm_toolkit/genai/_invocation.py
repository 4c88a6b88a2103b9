"""One GenAI invocation: start the span, stop it with the response, or fail it with an error.

Provider code (``instrumentation/openai``) extracts attributes and fills the fields of an
:class:`Invocation`; this module owns the lifecycle: span start/end (exactly once), metrics,
content attributes and the content event, retry/token events, and the in-process
:class:`~rlm_toolkit.genai._context.Payload` exposed around every SDK hook.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes, http_attributes, server_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from rlm_toolkit._safety import contain
from rlm_toolkit.attributes import (
    EVENT_INFERENCE_DETAILS,
    EVENT_RETRY,
    EVENT_TOKEN,
    GEN_AI_USAGE_COST,
    RLM_ERROR_CODE,
    RLM_REQUEST_ATTEMPTS,
    RLM_TOKEN_INDEX,
)
from rlm_toolkit.genai._content import to_json, truncate_messages, truncate_parts
from rlm_toolkit.genai._context import PAYLOAD, Payload, Scope
from rlm_toolkit.genai._events import emit_event
from rlm_toolkit.genai._failure import emit_operation_exception, provider_error_attributes
from rlm_toolkit.genai._handler import TelemetryHandler
from rlm_toolkit.genai._semconv import FINISH_REASON_ERROR, INFERENCE_OPERATIONS

_HTTP_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
_TOKEN_INPUT = GA.GenAiTokenTypeValues.INPUT.value
_TOKEN_OUTPUT = GA.GenAiTokenTypeValues.OUTPUT.value


MetricAttrs = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


class _MetricAttrs:
    """Metric attribute dicts, built once per (operation, provider, models, server, error) key:
    the same few combinations repeat on every call, and the SDK copies what it keeps."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], MetricAttrs] = {}

    def get(self, key: tuple[Any, ...]) -> MetricAttrs:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        return self._build(key)

    def _build(self, key: tuple[Any, ...]) -> MetricAttrs:
        operation, provider, request_model, response_model, address, port, error_type = key
        base: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: operation, GA.GEN_AI_PROVIDER_NAME: provider}
        if request_model:
            base[GA.GEN_AI_REQUEST_MODEL] = request_model
        if response_model:
            base[GA.GEN_AI_RESPONSE_MODEL] = response_model
        if address:
            base[server_attributes.SERVER_ADDRESS] = address
        if port:
            base[server_attributes.SERVER_PORT] = port
        if error_type:
            base[error_attributes.ERROR_TYPE] = error_type
        entry = (
            base,
            {**base, GA.GEN_AI_TOKEN_TYPE: _TOKEN_INPUT},
            {**base, GA.GEN_AI_TOKEN_TYPE: _TOKEN_OUTPUT},
        )
        if len(self._cache) > 512:  # bounded: model names come from user input
            self._cache.clear()
        self._cache[key] = entry
        return entry


_METRIC_ATTRS = _MetricAttrs()


class Invocation:
    """State of one logical call. Provider code fills the fields; :meth:`end` runs once."""

    __slots__ = (
        "api",
        "attempts",
        "cache_write_1h_tokens",
        "cache_write_tokens",
        "cached_input_tokens",
        "cost",
        "ended",
        "handler",
        "input_messages",
        "input_tokens",
        "needs_body",
        "operation",
        "output_messages",
        "output_tokens",
        "payload",
        "provider",
        "reasoning_tokens",
        "request_model",
        "response_attributes",
        "response_model",
        "scope",
        "server_address",
        "server_port",
        "span",
        "start_ns",
        "system_instructions",
        "tool_definitions",
        "wants_content",
        "wants_tokens",
    )

    def __init__(
        self,
        handler: TelemetryHandler,
        operation: str,
        request_model: str | None,
        server_address: str | None,
        server_port: int | None,
        provider: str | None = None,
        scope: Scope | None = None,
    ) -> None:
        """One call reported through ``handler`` (its tracer, logger, instruments, content
        policy). ``provider``: ``gen_ai.provider.name`` of this call (from the client; default:
        the handler's). ``scope``: the runtime scope the call was made in (its callbacks are
        consumers of this call too). What the consumers want is asked from the handler here,
        once."""
        #: The USD cost put on the span at its end (None: unpriced, or not ended yet).
        self.cost: float | None = None
        self.handler = handler
        self.scope = scope
        self.provider = provider or handler.provider_name
        self.operation = operation
        self.request_model = request_model
        self.server_address = server_address
        self.server_port = server_port
        self.api = ""
        self.attempts = 1
        self.ended = False
        self.needs_body = False
        self.response_model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cached_input_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        #: The part of ``cache_write_tokens`` with a 1-hour TTL (Anthropic bills it at 2x input).
        self.cache_write_1h_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.response_attributes: dict[str, Any] | None = None
        self.input_messages: list[dict[str, Any]] | None = None
        self.system_instructions: list[dict[str, Any]] | None = None
        self.tool_definitions: list[dict[str, Any]] | None = None
        self.output_messages: list[dict[str, Any]] | None = None
        self.start_ns = 0
        wants = handler.wants(scope)
        self.wants_tokens = wants.tokens
        self.payload: Payload | None = None
        if wants.payload:
            self.payload = payload = Payload()
            payload.scope = scope
        #: Whether anyone needs message content (export capture or an in-process consumer).
        content = handler.content
        self.wants_content = content.on_span or content.on_event or wants.payload

    # -- lifecycle -------------------------------------------------------------------------

    def start(
        self, attributes: dict[str, Any], request: dict[str, Any] | None, context: Context | None = None
    ) -> Span:
        """Start the CLIENT span with the request attributes (so samplers see them).

        ``context``: the current context when the caller already has it (saves a lookup).
        """
        payload = self.payload
        name = f"{self.operation} {self.request_model}" if self.request_model else self.operation
        if payload is None:
            span = self.handler.tracer.start_span(name, context, SpanKind.CLIENT, attributes)
        else:
            payload.request = request
            payload.input_messages = self.input_messages
            payload.system_instructions = self.system_instructions
            payload.tool_definitions = self.tool_definitions
            token = PAYLOAD.set(payload)  # payload_during, inlined: once per call
            try:
                span = self.handler.tracer.start_span(name, context, SpanKind.CLIENT, attributes)
            finally:
                PAYLOAD.reset(token)
            payload.span = span
        self.span = span
        self.start_ns = time.perf_counter_ns()
        return span

    def stop(
        self,
        response: Any = None,
        extra: dict[str, Any] | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        """End successfully (``extra``: e.g. stream end attributes). No-op after the first end.

        ``end_time`` (``time.time_ns``) and ``end_ns`` (``perf_counter_ns``): when the call
        ended, if earlier than now (an abandoned stream ended by the reaper).
        """
        if self.ended:
            return
        self.ended = True
        duration = ((end_ns or time.perf_counter_ns()) - self.start_ns) / 1e9
        span = self.span
        try:
            self.cost = cost = self._cost()
            if span.is_recording():
                attrs = self._end_attributes(cost)
                if extra:
                    attrs.update(extra)
                span.set_attributes(attrs)
            self._record_metrics(duration, None, cost)
            if self.handler.content.on_event:
                self._emit_details(None)
        except Exception as exc:  # the span still ends below
            contain("invocation stop", exc)
        self._end_span(end_time, response=response)

    def fail(
        self,
        exc: BaseException,
        extra: dict[str, Any] | None = None,
        end_time: int | None = None,
        end_ns: int | None = None,
    ) -> None:
        """End with an error: ``error.type``, ERROR status, the exception recorded."""
        if self.ended:
            return
        self.ended = True
        duration = ((end_ns or time.perf_counter_ns()) - self.start_ns) / 1e9
        error_type = type(exc).__qualname__
        span = self.span
        try:
            conventions = self.handler.conventions
            if conventions.finish_reasons_on_failure and self.operation in INFERENCE_OPERATIONS:
                # Latest mode (registry.yaml @ e9de14bafd97): a finish reason expected but not
                # received "because generation failed" is ``error`` in its position, one per
                # choice requested (``n``); a stream that ended early already set its own
                # (genai/_stream.py). v1.41 lists only the reasons received, so none here.
                received = self.response_attributes or {}
                if not received.get(GA.GEN_AI_RESPONSE_FINISH_REASONS):
                    requested = (getattr(span, "attributes", None) or {}).get(
                        GA.GEN_AI_REQUEST_CHOICE_COUNT, 1
                    )
                    positions = requested if isinstance(requested, int) and 1 <= requested <= 128 else 1
                    self.response_attributes = {
                        **received,
                        GA.GEN_AI_RESPONSE_FINISH_REASONS: (FINISH_REASON_ERROR,) * positions,
                    }
            self.cost = cost = self._cost()
            if span.is_recording():
                attrs = self._end_attributes(cost)
                attrs[error_attributes.ERROR_TYPE] = error_type
                status_code = getattr(exc, "status_code", None)
                if isinstance(status_code, int):
                    attrs[_HTTP_STATUS] = status_code
                # The provider's own code (``model_not_found``...): ``error.type`` is the class.
                code = getattr(exc, "code", None)
                if isinstance(code, str) and code:
                    attrs[RLM_ERROR_CODE] = code
                provider_error_attributes(exc, attrs)
                if extra:
                    attrs.update(extra)
                span.set_attributes(attrs)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:1024] or error_type))
            self._record_metrics(duration, error_type, cost)
            emit_operation_exception(self.handler, span, exc, error_type)
            if self.handler.content.on_event:
                self._emit_details(error_type)
        except Exception as error:  # the span still ends below
            contain("invocation fail", error)
        self._end_span(end_time, error=exc)

    def _end_span(
        self, end_time: int | None, response: Any = None, error: BaseException | None = None
    ) -> None:
        """End the span, exposing the in-process payload (if any) to processors meanwhile."""
        payload = self.payload
        if payload is None:
            self.span.end(end_time)
            return
        payload.response = response
        payload.error = error
        payload.output_messages = self.output_messages
        payload.input_messages = self.input_messages
        token = PAYLOAD.set(payload)
        try:
            self.span.end(end_time)
        finally:
            PAYLOAD.reset(token)

    # -- events ----------------------------------------------------------------------------

    def retry(self, attributes: dict[str, Any], error: BaseException | None) -> None:
        """The SDK is about to retry: span event + Logs-API record + counter."""
        self.attempts += 1
        now = time.time_ns()  # one event time for the span event and the log record
        if self.span.is_recording():
            self.span.add_event(EVENT_RETRY, attributes, now)
        payload = None
        if self.payload is not None:
            payload = Payload()
            payload.error = error
            payload.request = self.payload.request
            payload.scope = self.scope
            payload.span = self.span
        emit_event(self.handler.logger, EVENT_RETRY, attributes, self.span, payload, now)
        self.handler.instruments.retries.add(1, self._metric_attrs(None)[0])

    def token(self, index: int, text: str) -> None:
        """One streamed text delta reached the app (only called when a consumer wants tokens)."""
        payload = Payload()
        payload.token = text
        payload.scope = self.scope
        payload.span = self.span
        handler = self.handler
        if handler.export_tokens:  # opt-in: an exported record (its text stays in the payload)
            emit_event(handler.logger, EVENT_TOKEN, {RLM_TOKEN_INDEX: index}, self.span, payload)
        else:  # in-process consumers only: nothing reaches an exporter
            handler.deliver_point_event(EVENT_TOKEN, {RLM_TOKEN_INDEX: index}, self.span, payload)

    # -- helpers ---------------------------------------------------------------------------

    def _emit_details(self, error_type: str | None) -> None:
        """The conventions' ``gen_ai.client.inference.operation.details`` event (content capture on).

        Messages are structured values here (not JSON strings), as the conventions ask for events.
        """
        limit = self.handler.max_length
        attrs: dict[str, Any] = {
            GA.GEN_AI_OPERATION_NAME: self.operation,
            GA.GEN_AI_PROVIDER_NAME: self.provider,
        }
        if self.request_model:
            attrs[GA.GEN_AI_REQUEST_MODEL] = self.request_model
        if self.response_model:
            attrs[GA.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_attributes:
            for key in (GA.GEN_AI_RESPONSE_ID, GA.GEN_AI_RESPONSE_FINISH_REASONS):
                value = self.response_attributes.get(key)
                if value is not None:
                    attrs[key] = value
        if self.input_tokens is not None:
            attrs[GA.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attrs[GA.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if error_type is not None:
            attrs[error_attributes.ERROR_TYPE] = error_type
        if self.input_messages:
            attrs[GA.GEN_AI_INPUT_MESSAGES] = truncate_messages(self.input_messages, limit)
        if self.system_instructions:
            attrs[GA.GEN_AI_SYSTEM_INSTRUCTIONS] = truncate_parts(self.system_instructions, limit)
        if self.tool_definitions:
            attrs[GA.GEN_AI_TOOL_DEFINITIONS] = self.tool_definitions
        if self.output_messages:
            attrs[GA.GEN_AI_OUTPUT_MESSAGES] = truncate_messages(self.output_messages, limit)
        emit_event(self.handler.logger, EVENT_INFERENCE_DETAILS, attrs, self.span, self.payload)

    def _cost(self) -> float | None:
        """The call's cost by the handler's cost function: cache hits and (when the API reported
        any) cache writes passed apart, and their 1-hour-TTL part apart again, so a provider that
        bills writes above the input rate (Anthropic: 1.25x for 5 minutes, 2x for 1 hour) is
        priced as it bills. Every provider's calls take this one path."""
        fn = self.handler.cost
        model = self.response_model or self.request_model
        if fn is None or not model or (self.input_tokens is None and self.output_tokens is None):
            return None
        try:
            if self.cache_write_1h_tokens and self.cache_write_tokens:  # only then (older shapes)
                return fn(
                    model,
                    input_tokens=self.input_tokens or 0,
                    output_tokens=self.output_tokens or 0,
                    cached_input_tokens=self.cached_input_tokens or 0,
                    provider=self.provider,
                    cache_write_input_tokens=self.cache_write_tokens,
                    cache_write_1h_input_tokens=min(self.cache_write_1h_tokens, self.cache_write_tokens),
                )
            if self.cache_write_tokens:  # only then: a cost function of the older shape still works
                return fn(
                    model,
                    input_tokens=self.input_tokens or 0,
                    output_tokens=self.output_tokens or 0,
                    cached_input_tokens=self.cached_input_tokens or 0,
                    provider=self.provider,
                    cache_write_input_tokens=self.cache_write_tokens,
                )
            return fn(
                model,
                input_tokens=self.input_tokens or 0,
                output_tokens=self.output_tokens or 0,
                cached_input_tokens=self.cached_input_tokens or 0,
                provider=self.provider,
            )
        except Exception as exc:
            contain("estimate_cost", exc)
            return None

    def _end_attributes(self, cost: float | None) -> dict[str, Any]:
        attrs: dict[str, Any] = dict(self.response_attributes) if self.response_attributes else {}
        attrs[RLM_REQUEST_ATTEMPTS] = self.attempts
        if self.response_model:
            attrs[GA.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.input_tokens is not None:
            attrs[GA.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attrs[GA.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        # A reported 0 is information (no cache hit, no reasoning); only an absent count is not.
        if self.cached_input_tokens is not None:
            attrs[GA.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cached_input_tokens
        if self.cache_write_tokens is not None:
            attrs[self.handler.conventions.cache_write_attribute] = self.cache_write_tokens
        if self.reasoning_tokens is not None:
            attrs[GA.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens
        if cost is not None:
            attrs[GEN_AI_USAGE_COST] = cost
        if self.handler.content.on_span:
            self._content_attributes(attrs)
        return attrs

    def _content_attributes(self, attrs: dict[str, Any]) -> None:
        limit = self.handler.max_length
        if self.input_messages:
            attrs[GA.GEN_AI_INPUT_MESSAGES] = to_json(truncate_messages(self.input_messages, limit))
        if self.system_instructions:
            attrs[GA.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(truncate_parts(self.system_instructions, limit))
        if self.tool_definitions:
            attrs[GA.GEN_AI_TOOL_DEFINITIONS] = to_json(self.tool_definitions)
        if self.output_messages:
            attrs[GA.GEN_AI_OUTPUT_MESSAGES] = to_json(truncate_messages(self.output_messages, limit))

    def _metric_key(self, error_type: str | None) -> tuple[Any, ...]:
        return (
            self.operation,
            self.provider,
            self.request_model,
            self.response_model,
            self.server_address,
            self.server_port,
            error_type,
        )

    def _metric_attrs(self, error_type: str | None) -> MetricAttrs:
        return _METRIC_ATTRS.get(self._metric_key(error_type))

    def _record_metrics(self, duration: float, error_type: str | None, cost: float | None) -> None:
        key = self._metric_key(error_type)
        base, inp, out = _METRIC_ATTRS.get(key)
        instruments = self.handler.instruments
        instruments.record_call(
            self.operation,
            duration,
            error_type is not None,
            base,
            inp,
            out,
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
        )
        if cost:  # only priced models (None) and non-zero amounts
            instruments.cost.add(cost, base, key)

    def record_stream_timing(self, first_chunk_s: float | None, per_chunk_s: float | None) -> None:
        base = self._metric_attrs(None)[0]
        instruments = self.handler.instruments
        if first_chunk_s is not None:
            instruments.time_to_first_chunk.record(first_chunk_s, base)
        if per_chunk_s is not None:
            instruments.time_per_chunk.record(per_chunk_s, base)
