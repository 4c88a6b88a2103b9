"""Every recorded OpenAI cassette, replayed through the real SDK in BOTH convention modes (issue #20).

Each of the cassettes in ``../shared/cassettes/openai-contrib`` (real OpenAI traffic, recorded by
opentelemetry-python-contrib) is replayed with a sync and an async client, capture off and on,
in each mode; every exported span, metric point and log record is then checked against the
mode's expectations, written below as data: the names the mode may emit, what each instrument
is, its Required attributes, which names a kind of call must produce, the schema URL.

The expectations follow the versions named in ``genai/_semconv.py`` (v1.41: the core
repository's GenAI names; latest: ``open-telemetry/semantic-conventions-genai``
``model/gen-ai/token-metrics.yaml`` @ 066d4a7f356f, ``metrics.yaml`` @ 88eccb155ca7 (embeddings)
and @ e9de14bafd97 (agent invocations), ``events.yaml`` @ 0387091683b4, ``registry.yaml`` @
e9de14bafd97 (finish reasons of a failed call)). Names are string literals on purpose: they pin
the wire format.

``test_checks_bite`` runs each mode's expectations against the other mode's output (schema URL
left out, so the names alone must tell them apart): every cassette must fail there, and so must
a recursive run with a nested run and a failing code step against the offline server
(``test_run_conforms_and_checks_bite``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel
from .openai_cassettes import CASSETTES, replay

vcr = pytest.importorskip("vcr")

pytestmark = pytest.mark.skipif(not CASSETTES.is_dir(), reason="contrib cassettes not available")
NAMES = sorted(p.stem for p in CASSETTES.glob("*.yaml")) if CASSETTES.is_dir() else []

INFERENCE = frozenset({"chat", "text_completion", "generate_content"})
AGENT = frozenset({"invoke_agent", "execute_tool"})  # the runtime's INTERNAL spans
ANY_OPERATION = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
#: Required on every metric point of a GenAI client call (operation, provider).
BASE = frozenset({"gen_ai.operation.name", "gen_ai.provider.name"})


@dataclass(frozen=True)
class Metric:
    kind: str  # "Histogram" or "Sum" (a counter)
    unit: str
    required: frozenset[str] = BASE
    operations: frozenset[str | None] = ANY_OPERATION  # values of gen_ai.operation.name it may carry
    values: Mapping[str, frozenset[Any]] = field(default_factory=dict)  # attribute -> allowed values
    on_failure: bool = True  # may a failed call record it?


@dataclass(frozen=True)
class Event:
    required: frozenset[str]
    severity: int | None = None  # SeverityNumber value, when the mode fixes it
    forbidden: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Mode:
    schema: str
    metrics: Mapping[str, Metric]  # every gen_ai.* metric the mode may emit
    #: call kind -> metric names it must produce ("inference", "inference_usage",
    #: "inference_failed", "embeddings", "embeddings_usage", "embeddings_failed")
    must: Mapping[str, frozenset[str]]
    #: span attribute names of this mode that the other mode spells differently
    span_names: frozenset[str]
    other_span_names: frozenset[str]
    events: Mapping[str, Event]
    failure_events: frozenset[str]  # records a failed call must emit
    #: a failed inference call reports ``error`` for each finish reason it never received
    error_finish_reasons: bool = False


V141 = Mode(
    schema="https://opentelemetry.io/schemas/1.41.0",
    metrics={
        "gen_ai.client.operation.duration": Metric("Histogram", "s"),
        "gen_ai.client.token.usage": Metric(
            "Histogram",
            "{token}",
            BASE | {"gen_ai.token.type"},
            values={"gen_ai.token.type": frozenset({"input", "output"})},
        ),
        "gen_ai.client.operation.time_to_first_chunk": Metric("Histogram", "s", operations=INFERENCE),
        "gen_ai.client.operation.time_per_output_chunk": Metric("Histogram", "s", operations=INFERENCE),
    },
    must={
        "inference": frozenset({"gen_ai.client.operation.duration"}),
        "inference_usage": frozenset({"gen_ai.client.token.usage"}),
        "inference_failed": frozenset({"gen_ai.client.operation.duration"}),
        "embeddings": frozenset({"gen_ai.client.operation.duration"}),
        "embeddings_usage": frozenset({"gen_ai.client.token.usage"}),
        "embeddings_failed": frozenset({"gen_ai.client.operation.duration"}),
        "invoke_agent": frozenset(),
        "execute_tool": frozenset(),
    },
    span_names=frozenset({"gen_ai.usage.cache_creation.input_tokens", "rlm.request.reasoning.effort"}),
    other_span_names=frozenset({"gen_ai.usage.cache_write.input_tokens", "gen_ai.request.reasoning.level"}),
    events={
        "gen_ai.client.inference.operation.details": Event(BASE),
    },
    failure_events=frozenset(),
)

_USAGE = BASE | {"gen_ai.token.modality"}
_MODALITY = {"gen_ai.token.modality": frozenset({"unknown", "text", "image", "audio", "video"})}


def _counter() -> Metric:
    return Metric("Sum", "{token}", _USAGE, INFERENCE, _MODALITY)


LATEST = Mode(
    schema="https://opentelemetry.io/schemas/gen-ai/1.42.0",
    metrics={
        "gen_ai.client.inference.duration": Metric("Histogram", "s", operations=INFERENCE),
        "gen_ai.client.embeddings.duration": Metric("Histogram", "s", operations=frozenset({"embeddings"})),
        "gen_ai.client.embeddings.operation.input_tokens": Metric(
            "Histogram", "{token}", operations=frozenset({"embeddings"}), on_failure=False
        ),
        "gen_ai.client.inference.usage.input_tokens": _counter(),
        "gen_ai.client.inference.usage.output_tokens": _counter(),
        "gen_ai.client.inference.usage.cache_read.input_tokens": _counter(),
        "gen_ai.client.inference.usage.cache_write.input_tokens": _counter(),
        "gen_ai.client.inference.usage.reasoning.output_tokens": _counter(),
        # per-call histograms: not for failed operations (changelog.d +token-histograms-failed)
        "gen_ai.client.inference.operation.input_tokens": Metric(
            "Histogram", "{token}", operations=INFERENCE, on_failure=False
        ),
        "gen_ai.client.inference.operation.output_tokens": Metric(
            "Histogram", "{token}", operations=INFERENCE, on_failure=False
        ),
        "gen_ai.client.inference.time_to_first_chunk": Metric("Histogram", "s", operations=INFERENCE),
        "gen_ai.client.inference.time_per_output_chunk": Metric("Histogram", "s", operations=INFERENCE),
        # metrics.yaml @ e9de14bafd97: every invocation at any depth, is_nested Required
        "gen_ai.invocation.duration": Metric(
            "Histogram",
            "s",
            frozenset({"gen_ai.operation.name", "gen_ai.invocation.is_nested"}),
            frozenset({"invoke_agent"}),
            {"gen_ai.invocation.is_nested": frozenset({True, False})},
        ),
        "gen_ai.execute_tool.duration": Metric(
            "Histogram",
            "s",
            frozenset({"gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.type", "gen_ai.agent.name"}),
            frozenset({"execute_tool"}),
        ),
        # the tool executions each run triggered itself (agent name Recommended, no operation)
        "gen_ai.invoke_agent.tool_calls": Metric(
            "Histogram", "{tool_call}", frozenset({"gen_ai.agent.name"}), frozenset({None})
        ),
    },
    must={
        "inference": frozenset({"gen_ai.client.inference.duration"}),
        "inference_usage": frozenset(
            {
                "gen_ai.client.inference.usage.input_tokens",
                "gen_ai.client.inference.usage.output_tokens",
                "gen_ai.client.inference.operation.input_tokens",
                "gen_ai.client.inference.operation.output_tokens",
            }
        ),
        # usage counters on failed calls too: 0 with modality "unknown" when no usage arrived
        "inference_failed": frozenset(
            {
                "gen_ai.client.inference.duration",
                "gen_ai.client.inference.usage.input_tokens",
                "gen_ai.client.inference.usage.output_tokens",
            }
        ),
        "embeddings": frozenset({"gen_ai.client.embeddings.duration"}),
        "embeddings_usage": frozenset({"gen_ai.client.embeddings.operation.input_tokens"}),
        "embeddings_failed": frozenset({"gen_ai.client.embeddings.duration"}),
        "invoke_agent": frozenset({"gen_ai.invocation.duration", "gen_ai.invoke_agent.tool_calls"}),
        "execute_tool": frozenset({"gen_ai.execute_tool.duration"}),
    },
    span_names=V141.other_span_names,
    other_span_names=V141.span_names,
    events={
        "gen_ai.client.inference.operation.details": Event(BASE),
        "gen_ai.client.operation.exception": Event(
            frozenset({"exception.type", "error.type"}),
            severity=13,
            forbidden=frozenset({"exception.message"}),
        ),
        # ours: the conventions define no event for a failed tool execution
        "rlm.execute_tool.exception": Event(
            frozenset({"gen_ai.operation.name", "gen_ai.tool.name", "error.type"}), severity=13
        ),
    },
    failure_events=frozenset({"gen_ai.client.operation.exception"}),
    error_finish_reasons=True,
)

MODES = {"v1.41": V141, "latest": LATEST}


@dataclass
class Output:
    spans: list[Any]
    metrics: list[tuple[str, Any, Any]]  # (schema URL, metric, point)
    logs: list[Any]  # ReadableLogRecord


def check(mode: Mode, out: Output, schema: bool = True) -> list[str]:
    """Every problem of ``out`` under ``mode`` (empty: it conforms)."""
    problems: list[str] = []
    kinds: set[str] = set()
    failed_spans = set()
    by_id = {span.context.span_id: span for span in out.spans}
    nesting: set[bool] = set()  # is_nested values the runs' points must show
    for span in out.spans:
        attrs = dict(span.attributes or {})
        scope_schema = span.instrumentation_scope.schema_url if span.instrumentation_scope else None
        if schema and scope_schema != mode.schema:
            problems.append(f"span {span.name}: schema {scope_schema}")
        operation = attrs.get("gen_ai.operation.name")
        if operation in AGENT:
            kinds.add(operation)
            if operation == "invoke_agent":
                nesting.add(_inside_a_run(span, by_id))
            continue
        for key in sorted(BASE - attrs.keys()):
            problems.append(f"span {span.name}: Required {key} missing")
        for key in sorted(mode.other_span_names & attrs.keys()):
            problems.append(f"span {span.name}: {key} is the other mode's name")
        failed = "error.type" in attrs
        if span.status.status_code.name == "ERROR" and not failed:
            problems.append(f"span {span.name}: failed without error.type")
        reasons = tuple(attrs.get("gen_ai.response.finish_reasons") or ())
        if failed and operation in INFERENCE and mode.error_finish_reasons and "error" not in reasons:
            problems.append(f"span {span.name}: failed without an error finish reason")
        if "error" in reasons and not mode.error_finish_reasons:
            problems.append(f"span {span.name}: finish reason error was never received")
        family = "embeddings" if operation == "embeddings" else "inference"
        kinds.add(family + ("_failed" if failed else ""))
        if not failed and "gen_ai.usage.input_tokens" in attrs:
            kinds.add(family + "_usage")
        if failed:
            failed_spans.add(span.context.span_id)
    names = set()
    for scope_schema, metric, point in out.metrics:
        if not metric.name.startswith("gen_ai."):
            continue
        names.add(metric.name)
        spec = mode.metrics.get(metric.name)
        if spec is None:
            problems.append(f"metric {metric.name}: not a name of this mode")
            continue
        if schema and scope_schema != mode.schema:
            problems.append(f"metric {metric.name}: schema {scope_schema}")
        if type(metric.data).__name__ != spec.kind or metric.unit != spec.unit:
            problems.append(f"metric {metric.name}: {type(metric.data).__name__} in {metric.unit}")
        attrs = dict(point.attributes or {})
        for key in sorted(spec.required - attrs.keys()):
            problems.append(f"metric {metric.name}: Required {key} missing")
        if attrs.get("gen_ai.operation.name") not in spec.operations:
            problems.append(f"metric {metric.name}: operation {attrs.get('gen_ai.operation.name')}")
        for key, allowed in spec.values.items():
            if attrs.get(key) not in allowed:
                problems.append(f"metric {metric.name}: {key}={attrs.get(key)!r}")
        if "error.type" in attrs and not spec.on_failure:
            problems.append(f"metric {metric.name}: recorded for a failed call")
    for kind in sorted(kinds):
        for name in sorted(mode.must[kind] - names):
            problems.append(f"{kind} call: {name} missing")
    spec = mode.metrics.get("gen_ai.invocation.duration")
    if spec is not None:
        shown = {
            dict(point.attributes or {}).get("gen_ai.invocation.is_nested")
            for _, metric, point in out.metrics
            if metric.name == "gen_ai.invocation.duration"
        }
        for nested in sorted(nesting - shown):
            problems.append(f"invoke_agent: no invocation point with is_nested={nested}")
    seen_failure: dict[str, set[int]] = {}
    for readable in out.logs:
        record = readable.log_record
        event = mode.events.get(record.event_name or "")
        if event is None:
            problems.append(f"log {record.event_name}: not a name of this mode")
            continue
        scope = readable.instrumentation_scope
        if schema and (scope.schema_url if scope else None) != mode.schema:
            problems.append(f"log {record.event_name}: schema {scope.schema_url if scope else None}")
        attrs = dict(record.attributes or {})
        for key in sorted(event.required - attrs.keys()):
            problems.append(f"log {record.event_name}: Required {key} missing")
        for key in sorted(event.forbidden & attrs.keys()):
            problems.append(f"log {record.event_name}: {key} must not be sent")
        severity = record.severity_number.value if record.severity_number is not None else None
        if event.severity is not None and severity != event.severity:
            problems.append(f"log {record.event_name}: severity {severity}")
        seen_failure.setdefault(record.event_name or "", set()).add(record.span_id)
    for name in sorted(mode.failure_events):
        for span_id in failed_spans - seen_failure.get(name, set()):
            problems.append(f"failed span {span_id:x}: no {name} record")
    return problems


def _inside_a_run(span: Any, by_id: Mapping[int, Any]) -> bool:
    """Whether an ``invoke_agent`` span has another one among its ancestors."""
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        ancestor = by_id[parent.span_id]
        if dict(ancestor.attributes or {}).get("gen_ai.operation.name") == "invoke_agent":
            return True
        parent = ancestor.parent
    return False


def collect(otel: Otel) -> Output:
    metrics = []
    data = otel.reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    metrics.append((sm.scope.schema_url, metric, point))
    return Output(otel.spans(), metrics, list(otel.logs_exporter.get_finished_logs()))


@pytest.fixture
def run_mode(otel: Otel) -> Iterator[Any]:
    """``run_mode(mode, capture)``: instrument the in-memory pipelines in that mode."""

    def start(mode: str, capture: bool) -> Otel:
        rlm_toolkit.instrument(
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
            logger_provider=otel.logger_provider,
            capture_content=capture,
            semconv=mode,
        )
        return otel

    yield start
    rlm_toolkit.uninstrument()


@pytest.mark.parametrize("capture", [False, True], ids=["no_content", "content"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", NAMES)
async def test_replay_conforms(name: str, mode: str, is_async: bool, capture: bool, run_mode: Any) -> None:
    otel = run_mode(mode, capture)
    await replay(name, is_async)
    out = collect(otel)
    assert out.spans and any(m.name.startswith("gen_ai.") for _, m, _ in out.metrics)
    assert check(MODES[mode], out) == []


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", NAMES)
async def test_checks_bite(name: str, mode: str, run_mode: Any) -> None:
    """The other mode's expectations reject this mode's output, by names alone."""
    otel = run_mode(mode, True)
    await replay(name, is_async=False)
    out = collect(otel)
    other = MODES["latest" if mode == "v1.41" else "v1.41"]
    assert check(MODES[mode], out) == []
    assert check(other, out, schema=False) != []
    assert any("schema" in p for p in check(other, out))


def _repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_run_conforms_and_checks_bite(mode: str, run_mode: Any, server: OpenAIServer) -> None:
    """A recursive run (its code fails once, then starts a nested ``rlm_query`` run, whose
    answer is the root's) against the offline server: the run spans, their invocation and
    tool points (``is_nested`` false and true) and records conform to the mode, and the other
    mode's expectations reject them."""
    otel = run_mode(mode, False)
    server.queue_reply(_repl("1 / 0"))
    server.queue_reply(_repl("inner = rlm_query('Sub-question?', 'sub context')\nFINAL(inner)"))
    server.queue_reply(_repl("FINAL('from the nested run')"))
    rlm = rlm_toolkit.RLM.from_openai(
        "gpt-4o-mini",
        api_key="sk-test-secret",
        base_url=server.base_url,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
    )
    result = rlm.run("Anything?", context="some text")
    assert (result.status, result.answer) == ("final", "from the nested run")
    out = collect(otel)
    assert [s.name for s in out.spans].count("invoke_agent rlm") == 2
    other = MODES["latest" if mode == "v1.41" else "v1.41"]
    assert check(MODES[mode], out) == []
    problems = check(other, out, schema=False)
    if mode == "v1.41":  # the latest expectations miss the run's and the tool's points
        assert "invoke_agent call: gen_ai.invocation.duration missing" in problems
        assert "execute_tool call: gen_ai.execute_tool.duration missing" in problems
    else:
        assert "metric gen_ai.invocation.duration: not a name of this mode" in problems
        assert "log rlm.execute_tool.exception: not a name of this mode" in problems
    # without the nested point, the latest expectations fail too
    if mode == "latest":
        dropped = Output(
            out.spans,
            [
                m
                for m in out.metrics
                if not (
                    m[1].name == "gen_ai.invocation.duration"
                    and dict(m[2].attributes or {}).get("gen_ai.invocation.is_nested")
                )
            ],
            out.logs,
        )
        assert check(LATEST, dropped) == ["invoke_agent: no invocation point with is_nested=True"]


def test_every_cassette_is_replayed() -> None:
    """The list is the folder: a cassette added to it is replayed without editing this file."""
    assert len(NAMES) >= 71
    assert "test_chat_completion_404" in NAMES and "test_embeddings_model_not_found" in NAMES
