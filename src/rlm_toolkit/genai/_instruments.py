"""The metric instruments of GenAI client calls, with the conventions' bucket advice.

The names depend on the convention mode (:mod:`._semconv`): by default we emit the v1.41 ``gen_ai.client.*`` names only (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``, ``gen_ai.client.operation.time_to_first_chunk``,
``gen_ai.client.operation.time_per_output_chunk``), not the older/duplicate spellings some
instrumentations still double-emit: one name per measurement keeps dashboards unambiguous and
halves the per-call metric cost. With the latest GenAI names the same measurements go to
``gen_ai.client.inference.*`` and tokens to one counter per kind (no ``gen_ai.token.type``).
Our own counters are ``rlm.client.retries`` and
``rlm.client.cost``.

``time_per_output_chunk`` is recorded ONCE per completed stream with the stream's mean
inter-chunk time ``(end - first chunk) / (chunks - 1)``, instead of once per chunk as the
conventions describe: a histogram record per chunk would cost more than everything else we do
per chunk. Streams that did not complete (closed early, abandoned, failed) record no
per-chunk time, because their end is not the arrival of a chunk.

``rlm.client.cost`` is a monotonic sum like any counter, but reported by an *observable*
counter: calls add to an in-process running total per attribute set (a dict update under a
lock, ~1k instructions) and the SDK reads the totals at collection time. A synchronous
``Counter.add`` costs ~100k instructions per call in the OTel SDK (as much as a histogram
record); the exported data (name, unit, monotonic cumulative or delta sum per attribute set)
is the same, minus exemplars.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv.attributes import error_attributes

from rlm_toolkit.attributes import METRIC_COST, METRIC_RETRIES
from rlm_toolkit.genai._semconv import (
    DEFAULT,
    EMBEDDINGS_OPERATIONS,
    INFERENCE_OPERATIONS,
    MODALITY_UNKNOWN,
    Conventions,
)

#: Advised boundaries (seconds) for operation duration and time to first chunk.
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
#: Advised boundaries (seconds) for time per output chunk.
CHUNK_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip
#: Advised boundaries for per-invocation call counts.
CALL_BUCKETS: Final = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Advised boundaries for token counts.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


#: Distinct attribute sets the cost totals keep before folding new ones into one overflow set
#: (the SDK's own cardinality-limit convention).
MAX_COST_SERIES: Final = 2000
_OVERFLOW: Final = {"otel.metric.overflow": True}


class CostTotals:
    """Running cost totals per attribute set, observed by the ``rlm.client.cost`` counter."""

    __slots__ = ("_lock", "_totals")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[Hashable, list[Any]] = {}  # key -> [total, attributes]

    def add(self, amount: float, attributes: Mapping[str, Any], key: Hashable | None = None) -> None:
        """Add ``amount`` (>= 0) to the total of ``attributes``. ``key`` identifies the attribute
        set cheaply (the caller's cache key); default: the attributes themselves."""
        if key is None:
            key = frozenset(attributes.items())
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                if len(self._totals) >= MAX_COST_SERIES:
                    key = "overflow"
                    entry = self._totals.get(key)
                if entry is None:
                    entry = self._totals[key] = [0.0, _OVERFLOW if key == "overflow" else dict(attributes)]
            entry[0] += amount

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            return [Observation(total, attributes) for total, attributes in self._totals.values()]


class Instruments:
    """Created once per instrumentation (per meter); shared by every call.

    ``conventions`` picks the metric names (default: the v1.41 ones). In v1.41 mode tokens go
    to the ``token_usage`` histogram; in latest mode to the ``usage_*`` counters (one per kind).
    """

    __slots__ = (
        "agent_tool_calls",
        "conventions",
        "cost",
        "duration",
        "embeddings_duration",
        "embeddings_input_tokens",
        "invocation_duration",
        "operation_input_tokens",
        "operation_output_tokens",
        "retries",
        "time_per_chunk",
        "time_to_first_chunk",
        "token_usage",
        "tool_duration",
        "usage_cache_read",
        "usage_cache_write",
        "usage_input",
        "usage_output",
        "usage_reasoning",
    )

    def __init__(self, meter: Meter, conventions: Conventions = DEFAULT) -> None:
        names = self.conventions = conventions
        self.duration: Histogram = meter.create_histogram(
            name=names.duration,
            description="GenAI operation duration.",
            unit="s",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.token_usage = _token_histogram(
            meter, names.token_usage, "Number of input and output tokens used."
        )
        self.usage_input = _token_counter(meter, names.usage_input, "Input tokens used.")
        self.usage_output = _token_counter(meter, names.usage_output, "Output tokens used.")
        self.usage_cache_read = _token_counter(
            meter, names.usage_cache_read, "Input tokens read from a cache."
        )
        self.usage_cache_write = _token_counter(
            meter, names.usage_cache_write, "Input tokens written to a cache."
        )
        self.usage_reasoning = _token_counter(
            meter, names.usage_reasoning, "Output tokens used for reasoning."
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            name=names.time_to_first_chunk,
            description="Time to receive the first chunk of a streamed response.",
            unit="s",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.time_per_chunk: Histogram = meter.create_histogram(
            name=names.time_per_output_chunk,
            description="Mean time between output chunks of a completed stream (recorded once per stream).",
            unit="s",
            explicit_bucket_boundaries_advisory=list(CHUNK_BUCKETS),
        )
        self.tool_duration = _duration_histogram(meter, names.tool_duration, "Duration of a tool execution.")
        self.operation_input_tokens = _token_histogram(
            meter, names.operation_input_tokens, "Input tokens used per inference operation."
        )
        self.operation_output_tokens = _token_histogram(
            meter, names.operation_output_tokens, "Output tokens used per inference operation."
        )
        self.embeddings_duration = _duration_histogram(
            meter, names.embeddings_duration, "GenAI client embeddings operation duration."
        )
        self.embeddings_input_tokens = _token_histogram(
            meter, names.embeddings_input_tokens, "Input tokens used per embeddings operation."
        )
        self.invocation_duration = _duration_histogram(
            meter, names.invocation_duration, "Duration of an agent invocation."
        )
        self.agent_tool_calls: Histogram | None = None
        if names.agent_tool_calls is not None:
            self.agent_tool_calls = meter.create_histogram(
                name=names.agent_tool_calls,
                description="Tool executions an agent invocation triggered itself.",
                unit="{tool_call}",
                explicit_bucket_boundaries_advisory=[float(b) for b in CALL_BUCKETS],
            )
        self.retries: Counter = meter.create_counter(
            name=METRIC_RETRIES,
            description="HTTP attempts the SDK retried.",
            unit="{retry}",
        )
        self.cost = CostTotals()
        meter.create_observable_counter(
            name=METRIC_COST,
            callbacks=[self.cost.observe],
            description="Estimated cost of GenAI calls from the bundled price table.",
            unit="USD",
        )

    def record_call(
        self,
        operation: str,
        duration: float,
        failed: bool,
        base: Mapping[str, Any],
        input_attrs: Mapping[str, Any],
        output_attrs: Mapping[str, Any],
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None,
        cache_write_tokens: int | None,
        reasoning_tokens: int | None,
    ) -> None:
        """Duration and token usage of one ended call, on the mode's instruments.

        v1.41 (and any mode without embeddings metrics): ``duration`` and :meth:`record_tokens`.
        Latest: embeddings go to the embeddings duration and input-token histograms; inference
        calls to the inference duration, the usage counters (``gen_ai.token.modality`` =
        ``unknown``: no provider we instrument reports a per-modality breakdown; a failed call
        without usage records ``0``) and, for calls that did not fail, the per-call token
        histograms; any other operation (``count_tokens``, ``batches.*``) records nothing there,
        as no client metric of the latest conventions covers it."""
        names = self.conventions
        embeddings = self.embeddings_duration
        if embeddings is not None and operation in EMBEDDINGS_OPERATIONS:
            embeddings.record(duration, base)
            histogram = self.embeddings_input_tokens
            if histogram is not None and input_tokens is not None and not failed:
                histogram.record(input_tokens, base)
            return
        modality = names.token_modality_attribute
        if modality is not None and operation not in INFERENCE_OPERATIONS:
            return  # latest: no client metric covers it (count_tokens, batches.*); the span does
        self.duration.record(duration, base)
        if modality is None:
            self.record_tokens(
                base, input_attrs, output_attrs, input_tokens, output_tokens,
                cached_input_tokens, cache_write_tokens, reasoning_tokens,
            )  # fmt: skip
            return
        usage_attrs = {**base, modality: MODALITY_UNKNOWN}
        no_usage = input_tokens is None and output_tokens is None
        zero = 0 if failed and no_usage and names.zero_usage_on_failure else None
        for counter, value in (
            (self.usage_input, input_tokens),
            (self.usage_output, output_tokens),
            (self.usage_cache_read, cached_input_tokens),
            (self.usage_cache_write, cache_write_tokens),
            (self.usage_reasoning, reasoning_tokens),
        ):
            if counter is None:
                continue
            if value is None:
                value = zero
            if value is not None:
                counter.add(value, usage_attrs)
        if failed:
            return  # the per-call histograms are not recorded for failed operations
        for histogram_or_none, value in (
            (self.operation_input_tokens, input_tokens),
            (self.operation_output_tokens, output_tokens),
        ):
            if histogram_or_none is not None and value is not None:
                histogram_or_none.record(value, base)

    def record_agent(
        self,
        seconds: float,
        attributes: Mapping[str, Any],
        error_type: str | None,
        nested: bool,
        tool_calls: int = 0,
    ) -> None:
        """One ended ``invoke_agent`` run on the mode's invocation duration histogram (if any),
        with the run span's ``attributes`` the conventions list for it, ``error.type``, and
        ``nested`` (whether the run ran inside another in-process run) as the mode's
        Required nesting attribute; ``tool_calls`` (the tool executions the run triggered
        itself) on the mode's tool-call histogram, with the agent's name."""
        calls = self.agent_tool_calls
        if calls is not None:
            name = attributes.get(GA.GEN_AI_AGENT_NAME)
            calls.record(tool_calls, {GA.GEN_AI_AGENT_NAME: name} if name else {})
        histogram = self.invocation_duration
        if histogram is None:
            return
        attrs: dict[str, Any] = {key: attributes[key] for key in _AGENT_KEYS if key in attributes}
        nested_key = self.conventions.invocation_nested_attribute
        if nested_key is not None:
            attrs[nested_key] = nested
        if error_type is not None:
            attrs[error_attributes.ERROR_TYPE] = error_type
        histogram.record(seconds, attrs)

    def record_tokens(
        self,
        base: Mapping[str, Any],
        input_attrs: Mapping[str, Any],
        output_attrs: Mapping[str, Any],
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None,
        cache_write_tokens: int | None,
        reasoning_tokens: int | None,
    ) -> None:
        """Token usage of one call, in the mode's instruments. v1.41: the ``token_usage``
        histogram with ``input_attrs``/``output_attrs`` (``gen_ai.token.type``); latest: one
        counter per kind with ``base`` (a counter sums, so a 0 adds nothing and is skipped)."""
        histogram = self.token_usage
        if histogram is not None:
            if input_tokens is not None:
                histogram.record(input_tokens, input_attrs)
            if output_tokens is not None:
                histogram.record(output_tokens, output_attrs)
            return
        for counter, value in (
            (self.usage_input, input_tokens),
            (self.usage_output, output_tokens),
            (self.usage_cache_read, cached_input_tokens),
            (self.usage_cache_write, cache_write_tokens),
            (self.usage_reasoning, reasoning_tokens),
        ):
            if value and counter is not None:
                counter.add(value, base)


#: Run-span attributes the invocation duration carries (``metrics.yaml`` @ ``e9de14bafd97``:
#: operation Required, agent name Conditionally Required, the agent's one model Recommended;
#: ``gen_ai.provider.name`` is not listed for this metric).
_AGENT_KEYS: Final = (
    GA.GEN_AI_OPERATION_NAME,
    GA.GEN_AI_AGENT_NAME,
    GA.GEN_AI_REQUEST_MODEL,
)


def _duration_histogram(meter: Meter, name: str | None, description: str) -> Histogram | None:
    """A seconds histogram with the conventions' buckets; None where the mode has no such name."""
    if name is None:
        return None
    return meter.create_histogram(
        name=name,
        description=description,
        unit="s",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )


def _token_histogram(meter: Meter, name: str | None, description: str) -> Histogram | None:
    if name is None:
        return None
    return meter.create_histogram(
        name=name,
        description=description,
        unit="{token}",
        explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
    )


def _token_counter(meter: Meter, name: str | None, description: str) -> Counter | None:
    if name is None:
        return None
    return meter.create_counter(name=name, description=description, unit="{token}")
