"""``messages.count_tokens`` and ``messages.batches.*`` (and their beta twins) through the real
SDK over real HTTP to the offline server, with the SDK's own tracing on and off: one CLIENT span
of ours per call, never the SDK's; counting tokens is not usage (no token metric, no cost)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan

import rlm_toolkit
from rlm_toolkit.callbacks import BaseCallback

from ..conftest import Otel

MODEL = "claude-sonnet-4-5"
USER: Any = [{"role": "user", "content": "Say hello in one word."}]
OURS = "rlm_toolkit.instrumentation.anthropic"


class Calls(BaseCallback):
    def __init__(self) -> None:
        self.llm: list[Any] = []

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self.llm.append(kwargs)


@pytest.fixture
def inst(otel: Otel) -> Iterator[tuple[Otel, Calls]]:
    calls = Calls()
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        callbacks=[calls],
    )
    yield otel, calls
    rlm_toolkit.uninstrument()


def ours(otel: Otel) -> list[ReadableSpan]:
    spans = otel.spans()
    assert {s.instrumentation_scope.name for s in spans} <= {OURS}, [s.name for s in spans]  # type: ignore[union-attr]
    for span in spans:
        a = span.attributes or {}
        assert span.kind.name == "CLIENT"
        assert a["gen_ai.provider.name"] == "anthropic"
        assert a["server.address"] == "127.0.0.1"
        assert not [k for k in a if k.startswith("gen_ai.usage.")]
    return spans


def no_token_usage(otel: Otel) -> None:
    for name, points in otel.metrics().items():
        if "token" in name or "cost" in name:
            assert not points, name


def check_count(otel: Otel, counted: Any, api: str) -> None:
    (span,) = ours(otel)
    a = span.attributes or {}
    assert span.name == f"count_tokens {MODEL}"
    assert a["gen_ai.operation.name"] == "count_tokens"
    assert a["gen_ai.request.model"] == MODEL
    assert a["rlm.anthropic.api"] == api
    assert a["rlm.count_tokens.input_tokens"] == counted.input_tokens > 0
    no_token_usage(otel)
    (duration,) = otel.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["gen_ai.operation.name"] == "count_tokens"


def test_count_tokens_is_one_span_and_no_usage(inst: Any, anth: anthropic.Anthropic) -> None:
    otel, calls = inst
    counted = anth.messages.count_tokens(model=MODEL, messages=USER, system="Be brief.")
    check_count(otel, counted, "messages.count_tokens")
    assert calls.llm == []  # not an LLM call: no on_llm_start


async def test_count_tokens_async(inst: Any, aanth: anthropic.AsyncAnthropic) -> None:
    counted = await aanth.messages.count_tokens(model=MODEL, messages=USER)
    check_count(inst[0], counted, "messages.count_tokens")


def test_count_tokens_beta_and_raw(inst: Any, anth: anthropic.Anthropic) -> None:
    counted = anth.beta.messages.count_tokens(model=MODEL, messages=USER)
    check_count(inst[0], counted, "beta.messages.count_tokens")
    inst[0].spans_exporter.clear()
    raw = anth.messages.with_raw_response.count_tokens(model=MODEL, messages=USER)
    (span,) = ours(inst[0])
    assert (span.attributes or {})["rlm.count_tokens.input_tokens"] == raw.parse().input_tokens


def _requests(n: int) -> list[Any]:
    return [
        {"custom_id": f"req-{i}", "params": {"model": MODEL, "max_tokens": 20, "messages": USER}}
        for i in range(n)
    ]


def check_batch_spans(otel: Otel, expected: list[tuple[str, dict[str, Any]]], prefix: str = "") -> None:
    spans = ours(otel)
    assert [s.name for s in spans] == [op for op, _ in expected]
    for span, (op, attrs) in zip(spans, expected, strict=True):
        a = dict(span.attributes or {})
        assert a["gen_ai.operation.name"] == op
        assert a["rlm.anthropic.api"] == f"{prefix}messages.{op}"
        assert {k: a.get(k) for k in attrs} == attrs
    no_token_usage(otel)


def test_batches_lifecycle(inst: Any, anth: anthropic.Anthropic) -> None:
    otel, calls = inst
    batches = anth.messages.batches
    made = batches.create(requests=_requests(2))
    assert made.processing_status == "in_progress" and made.request_counts.processing == 2
    other = batches.create(requests=_requests(1))
    canceling = batches.cancel(other.id)
    assert canceling.processing_status == "canceling"
    done = batches.retrieve(made.id)
    assert done.processing_status == "ended" and done.request_counts.succeeded == 2
    page = batches.list(limit=10)
    assert [b.id for b in page.data][:2] == [other.id, made.id]
    results = list(batches.results(made.id))
    assert sorted(r.custom_id for r in results) == ["req-0", "req-1"]
    assert all(r.result.type == "succeeded" for r in results)
    assert [r.result.type for r in batches.results(other.id)] == ["canceled"]
    deleted = batches.delete(made.id)
    assert deleted.type == "message_batch_deleted"
    check_batch_spans(
        otel,
        [
            (
                "batches.create",
                {
                    "rlm.batch.requests": 2,
                    "rlm.batch.id": made.id,
                    "rlm.batch.processing_status": "in_progress",
                },
            ),
            ("batches.create", {"rlm.batch.requests": 1, "rlm.batch.id": other.id}),
            ("batches.cancel", {"rlm.batch.id": other.id, "rlm.batch.processing_status": "canceling"}),
            ("batches.retrieve", {"rlm.batch.id": made.id, "rlm.batch.processing_status": "ended"}),
            ("batches.list", {"rlm.batch.count": len(page.data)}),
            ("batches.results", {"rlm.batch.id": made.id}),  # its inner retrieve is no span of its own
            ("batches.results", {"rlm.batch.id": other.id}),
            ("batches.delete", {"rlm.batch.id": made.id}),
        ],
    )
    assert calls.llm == []


async def test_batches_async_and_list_paginator(inst: Any, aanth: anthropic.AsyncAnthropic) -> None:
    otel = inst[0]
    batches = aanth.messages.batches
    made = await batches.create(requests=_requests(1))
    await batches.retrieve(made.id)
    page = await batches.list(limit=5)
    seen = [b.id async for b in batches.list(limit=5)]
    assert made.id in seen and made.id in [b.id for b in page.data]
    results = [r async for r in await batches.results(made.id)]
    assert [r.custom_id for r in results] == ["req-0"]
    check_batch_spans(
        otel,
        [
            ("batches.create", {"rlm.batch.id": made.id}),
            ("batches.retrieve", {"rlm.batch.processing_status": "ended"}),
            ("batches.list", {"rlm.batch.count": len(page.data)}),
            ("batches.list", {"rlm.batch.count": len(page.data)}),
            ("batches.results", {"rlm.batch.id": made.id}),
        ],
    )


def test_beta_batches(inst: Any, anth: anthropic.Anthropic) -> None:
    made = anth.beta.messages.batches.create(requests=_requests(1))
    anth.beta.messages.batches.retrieve(made.id)
    check_batch_spans(
        inst[0],
        [("batches.create", {"rlm.batch.id": made.id}), ("batches.retrieve", {"rlm.batch.id": made.id})],
        prefix="beta.",
    )


def test_a_batch_error_is_typed_as_every_other_calls(inst: Any, anth: anthropic.Anthropic) -> None:
    # As for messages and on the openai side: the SDK's class, the API's envelope type beside it.
    with pytest.raises(anthropic.NotFoundError):
        anth.messages.batches.retrieve("msgbatch_missing")
    (span,) = ours(inst[0])
    a = span.attributes or {}
    assert a["error.type"] == "NotFoundError"
    assert a["rlm.error.provider_type"] == "not_found_error"
    assert a["http.response.status_code"] == 404
    assert span.status.status_code.name == "ERROR"


@pytest.mark.parametrize("mode", ["v1.41", "latest"])
def test_count_tokens_and_batches_metrics_per_mode(otel: Otel, anth: anthropic.Anthropic, mode: str) -> None:
    # v1.41's operation duration covers any operation; the latest conventions' client metrics
    # are for inference and embeddings only, so these calls record none there (the span stays).
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        semconv=mode,
    )
    try:
        anth.messages.count_tokens(model=MODEL, messages=USER)
        anth.messages.batches.list()
    finally:
        rlm_toolkit.uninstrument()
    assert sorted(s.name for s in ours(otel)) == ["batches.list", f"count_tokens {MODEL}"]
    metrics = {name: points for name, points in otel.metrics().items() if points}
    if mode == "latest":
        assert metrics == {}
    else:
        assert sorted(
            p.attributes["gen_ai.operation.name"] for p in metrics["gen_ai.client.operation.duration"]
        ) == [
            "batches.list",
            "count_tokens",
        ]
