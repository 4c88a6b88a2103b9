"""The two convention modes (issue #11): the whole telemetry shape each one emits.

Same calls in both modes, over real HTTP to the offline server: a chat call, a streamed chat
call that asks for usage, and a call that fails. Names are string literals on purpose: they
pin the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import rlm_toolkit
from rlm_toolkit.genai._semconv import DEFAULT, LATEST, opted_in, resolve_conventions
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Say hi"}]
CORE_SCHEMA = "https://opentelemetry.io/schemas/1.41.0"  # the core release whose GenAI names v1.41 mode emits
GENAI_SCHEMA = "https://opentelemetry.io/schemas/gen-ai/1.42.0"


@pytest.mark.parametrize(
    ("value", "latest"),
    [
        (None, False),
        ("", False),
        ("http", False),
        ("gen_ai_latest_experimental", True),
        ("http, gen_ai_latest_experimental ", True),
        ("database,GEN_AI_LATEST_EXPERIMENTAL", True),
        ("gen_ai_latest_experimental_x", False),
    ],
)
def test_opt_in_is_a_comma_separated_list(value: str | None, latest: bool) -> None:
    assert opted_in(value) is latest


def test_bad_argument_is_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"semconv='1\.42': expected 'v1\.41' \(default\) or 'latest'"):
        rlm_toolkit.instrument(semconv="1.42")
    assert resolve_conventions("latest") is LATEST and resolve_conventions("v1.41") is DEFAULT


def _run_calls(server: OpenAIServer) -> dict[str, Any]:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0)
    server.queue_reply("Hi!")
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    server.queue_reply("one two three")
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    server.queue_fault("rate_limit")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.close()
    usage = [response.usage, chunks[-1].usage]
    return {
        "input": sum(u.prompt_tokens for u in usage if u),
        "output": sum(u.completion_tokens for u in usage if u),
        "model": response.model,
    }


def _metric_shape(otel: Otel) -> dict[str, Any]:
    """name -> (unit, kind, sorted [(attributes, count or sum)]); schema URL of each scope."""
    data = otel.reader.get_metrics_data()
    assert data is not None
    out: dict[str, Any] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = []
                for p in metric.data.data_points:
                    value = (
                        p.count
                        if hasattr(p, "count")
                        else ("sum>0" if metric.name == "rlm.client.cost" else p.value)
                    )
                    points.append((tuple(sorted(p.attributes.items())), value))
                out[metric.name] = (
                    metric.unit,
                    type(metric.data).__name__,
                    sorted(points),
                    sm.scope.schema_url,
                )
    return out


def _span_shape(otel: Otel) -> list[tuple[str, str | None, list[str]]]:
    return [
        (
            s.name,
            s.instrumentation_scope.schema_url if s.instrumentation_scope else None,
            sorted(s.attributes or {}),
        )
        for s in otel.spans()
    ]


@pytest.fixture(params=["v1.41", "latest"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mode_instrumented(otel: Otel, mode: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    # The environment switch, as users set it (the argument is tested by the cassette replay).
    if mode == "latest":
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai_latest_experimental")
    else:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        capture_content="event_only",
    )
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "")  # read once: changing it now changes nothing
    yield otel
    rlm_toolkit.uninstrument()


def test_whole_shape(mode_instrumented: Otel, mode: str, module_server: OpenAIServer) -> None:
    module_server.reset()
    seen = _run_calls(module_server)
    otel = mode_instrumented
    latest = mode == "latest"
    schema = GENAI_SCHEMA if latest else CORE_SCHEMA

    ok_attrs = (
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", seen["model"]),
        ("server.address", "127.0.0.1"),
        ("server.port", module_server.port),
    )
    err_attrs = (
        ("error.type", "RateLimitError"),
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("server.address", "127.0.0.1"),
        ("server.port", module_server.port),
    )

    def attrs(base: tuple[tuple[str, Any], ...], **extra: Any) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((*base, *extra.items())))

    ok, err = attrs(ok_attrs), attrs(err_attrs)

    def unknown(base: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
        return attrs(base, **{"gen_ai.token.modality": "unknown"})

    def usage_sum(value: int) -> tuple[Any, ...]:
        return ("{token}", "Sum", sorted([(unknown(ok_attrs), value), (unknown(err_attrs), 0)]), schema)

    duration = ("s", "Histogram", sorted([(ok, 2), (err, 1)]), schema)
    chunk = ("s", "Histogram", [(ok, 1)], schema)
    cost = ("USD", "Sum", [(ok, "sum>0")], schema)
    if latest:
        expected_metrics = {
            "gen_ai.client.inference.duration": duration,
            "gen_ai.client.inference.time_to_first_chunk": chunk,
            "gen_ai.client.inference.time_per_output_chunk": chunk,
            # gen_ai.token.modality is Required: "unknown" (no per-modality breakdown); the
            # failed call records 0 (no usage arrived); a reported 0 is recorded as 0
            "gen_ai.client.inference.usage.input_tokens": usage_sum(seen["input"]),
            "gen_ai.client.inference.usage.output_tokens": usage_sum(seen["output"]),
            "gen_ai.client.inference.usage.cache_read.input_tokens": usage_sum(0),
            "gen_ai.client.inference.usage.reasoning.output_tokens": usage_sum(0),
            "gen_ai.client.inference.usage.cache_write.input_tokens": (
                "{token}",
                "Sum",
                [(unknown(err_attrs), 0)],
                schema,
            ),
            # per-call histograms: successful calls only
            "gen_ai.client.inference.operation.input_tokens": ("{token}", "Histogram", [(ok, 2)], schema),
            "gen_ai.client.inference.operation.output_tokens": ("{token}", "Histogram", [(ok, 2)], schema),
            "rlm.client.cost": cost,
        }
    else:
        expected_metrics = {
            "gen_ai.client.operation.duration": duration,
            "gen_ai.client.operation.time_to_first_chunk": chunk,
            "gen_ai.client.operation.time_per_output_chunk": chunk,
            "gen_ai.client.token.usage": (
                "{token}",
                "Histogram",
                sorted(
                    [
                        (attrs(ok_attrs, **{"gen_ai.token.type": "input"}), 2),
                        (attrs(ok_attrs, **{"gen_ai.token.type": "output"}), 2),
                    ]
                ),
                schema,
            ),
            "rlm.client.cost": cost,
        }
    assert _metric_shape(otel) == expected_metrics

    common = [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "rlm.openai.api",
        "rlm.request.attempts",
        "server.address",
        "server.port",
    ]
    usage = [
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.reasoning.output_tokens",
    ]
    response = ["gen_ai.response.finish_reasons", "gen_ai.response.id", "gen_ai.response.model"]
    fingerprint = ["openai.response.service_tier", "openai.response.system_fingerprint"]
    stream = [
        "gen_ai.request.stream",
        "gen_ai.response.time_to_first_chunk",
        "rlm.stream.chunk_count",
        "rlm.stream.end_reason",
    ]
    assert _span_shape(otel) == [
        ("chat gpt-4o", schema, sorted([*common, *usage, *response, *fingerprint, "gen_ai.usage.cost"])),
        (
            "chat gpt-4o",
            schema,
            sorted([*common, *usage, *response, *fingerprint, *stream, "gen_ai.usage.cost"]),
        ),
        (
            "chat gpt-4o-mini",
            schema,
            sorted(
                [
                    *common,
                    "error.type",
                    "http.response.status_code",
                    "rlm.error.code",
                    "rlm.error.provider_type",
                    # latest: the finish reason expected but never received is "error"
                    *(["gen_ai.response.finish_reasons"] if latest else []),
                ]
            ),
        ),
    ]
    failed_span = dict(otel.spans()[2].attributes or {})
    assert failed_span.get("gen_ai.response.finish_reasons") == (("error",) if latest else None)

    records = otel.logs()
    details = "gen_ai.client.inference.operation.details"
    failure = ["gen_ai.client.operation.exception"] if latest else []
    assert [r.event_name for r in records] == [details, details, *failure, details]
    if latest:  # WARN, in the failed span's context, the type only (a message can carry content)
        record = records[2]
        assert record.severity_number is not None and record.severity_number.value == 13
        assert dict(record.attributes or {}) == {
            "exception.type": "openai.RateLimitError",
            "error.type": "RateLimitError",
        }
        assert record.span_id == otel.spans()[2].context.span_id
    scopes = {r.instrumentation_scope.schema_url for r in otel.logs_exporter.get_finished_logs()}
    assert scopes == {schema}


@pytest.mark.parametrize(
    ("mode", "key", "metric"),
    [
        ("v1.41", "gen_ai.usage.cache_creation.input_tokens", None),
        (
            "latest",
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.client.inference.usage.cache_write.input_tokens",
        ),
    ],
)
def test_cache_write_tokens_per_mode(otel: Otel, mode: str, key: str, metric: str | None) -> None:
    """Some OpenAI-compatible providers report prompt-cache writes (OpenAI does not, and the
    offline server does not either, so the response object is built here)."""
    from openai.types.chat import ChatCompletion

    from rlm_toolkit.genai import Invocation
    from rlm_toolkit.instrumentation.openai._response import chat_response
    from rlm_toolkit.instrumentation.openai._setup import build_handler

    handler = build_handler(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, semconv=mode
    )
    try:
        response = ChatCompletion.model_validate(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "some-model",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
                ],
                "usage": {
                    "prompt_tokens": 100,
                    "completion_tokens": 2,
                    "total_tokens": 102,
                    "prompt_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 60},
                },
            }
        )
        inv = Invocation(handler, "chat", "some-model", "llm.example.com", 443, "openai")
        inv.start({}, None)
        chat_response(inv, response)
        inv.stop(response)
    finally:
        handler.close()
    attrs = dict(otel.span().attributes or {})
    assert attrs[key] == 60
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 40
    metrics = otel.metrics()
    if metric is not None:
        (point,) = metrics[metric]
        assert point.value == 60
        (point,) = metrics["gen_ai.client.inference.usage.cache_read.input_tokens"]
        assert point.value == 40


@pytest.mark.parametrize("mode", ["v1.41", "latest"])
def test_failed_call_finish_reasons_per_mode(otel: Otel, mode: str, server: OpenAIServer) -> None:
    """Latest mode (registry.yaml @ e9de14bafd97): a failed non-streamed inference call reports
    ``error`` for each finish reason expected (``n`` requested), on the span and in the details
    record; an embeddings call has no finish reasons; v1.41 lists only what was received."""
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        capture_content="event_only",
        semconv=mode,
    )
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0)
        for kwargs in ({}, {"n": 2}):
            server.queue_fault("rate_limit")
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)
        server.queue_fault("rate_limit")
        with pytest.raises(openai.RateLimitError):
            client.embeddings.create(model="text-embedding-3-small", input="hello")
        client.close()
    finally:
        rlm_toolkit.uninstrument()
    latest = mode == "latest"
    reasons = [dict(s.attributes or {}).get("gen_ai.response.finish_reasons") for s in otel.spans()]
    assert reasons == ([("error",), ("error", "error"), None] if latest else [None, None, None])
    details = [
        (r.attributes or {}).get("gen_ai.response.finish_reasons")
        for r in otel.logs()
        if r.event_name == "gen_ai.client.inference.operation.details"
    ]
    assert details[:2] == ([("error",), ("error", "error")] if latest else [None, None])
