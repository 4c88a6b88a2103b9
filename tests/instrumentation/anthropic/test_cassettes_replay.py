"""Real recorded Anthropic traffic (``../shared/cassettes/anthropic-genai/``) replayed through
the real SDK, instrumented, with the SDK's own tracing on and off: one span per exchange, ours,
and each span agrees with the recorded response (id, model, finish reason, usage with the
conventions' input total, the error's status and envelope type)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

import rlm_toolkit

from ..conftest import Otel, instrument_with
from .cassettes import CASSETTES, Exchange, exchanges, names, needs_cassettes
from .conftest import sdk_option

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length"}
FINISH |= {"tool_use": "tool_call", "refusal": "content_filter", "model_context_window_exceeded": "length"}


def expected(exchange: Exchange) -> dict[str, Any]:
    """What the span must say, read from the recording."""
    if exchange.status >= 400:
        error = exchange.json()["error"]
        return {"http.response.status_code": exchange.status, "rlm.error.provider_type": error["type"]}
    if exchange.stream:
        events = exchange.events()
        start = next(e for e in events if e["event"] == "message_start")["message"]
        deltas = [e for e in events if e["event"] == "message_delta"]
        usage = {**start["usage"]}
        for delta in deltas:
            usage.update({k: v for k, v in delta["usage"].items() if v is not None})
        stop = deltas[-1]["delta"]["stop_reason"] if deltas else None
        message = {"id": start["id"], "model": start["model"], "usage": usage, "stop_reason": stop}
    else:
        message = exchange.json()
    usage = message["usage"]
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    out = {
        "gen_ai.response.id": message["id"],
        "gen_ai.response.model": message["model"],
        "gen_ai.usage.input_tokens": usage["input_tokens"] + read + write,
        "gen_ai.usage.output_tokens": usage["output_tokens"],
    }
    if message.get("stop_reason"):
        out["gen_ai.response.finish_reasons"] = (FINISH.get(message["stop_reason"], message["stop_reason"]),)
    return out


def play(client: anthropic.Anthropic, exchange: Exchange) -> None:
    messages: Any = client.beta.messages if exchange.beta else client.messages
    try:
        if exchange.stream:
            for _ in messages.create(**{**exchange.kwargs(), "stream": True}):
                pass
        else:
            messages.create(**exchange.kwargs())
    except anthropic.APIStatusError:
        pass


@needs_cassettes
@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk_tracing_on", "sdk_tracing_off"])
@pytest.mark.parametrize("name", names())
def test_recorded_exchange_spans(name: str, sdk_tracing: bool, otel: Otel) -> None:
    import vcr

    recorded = exchanges(name)
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"], decode_compressed_response=True)
    instrument_with(otel)
    try:
        with (
            recorder.use_cassette(str(CASSETTES / f"{name}.yaml")),
            anthropic.Anthropic(
                api_key="test_anthropic_api_key", max_retries=0, open_telemetry=sdk_option(otel, sdk_tracing)
            ) as client,
        ):
            for exchange in recorded:
                play(client, exchange)
    finally:
        rlm_toolkit.uninstrument()
    spans = otel.spans()
    assert [s.instrumentation_scope.name for s in spans] == ["rlm_toolkit.instrumentation.anthropic"] * len(  # type: ignore[union-attr]
        recorded
    )
    for span, exchange in zip(spans, recorded, strict=True):
        attributes = dict(span.attributes or {})
        want = expected(exchange)
        assert {k: attributes.get(k) for k in want} == want, f"{name}[{exchange.index}]"
        assert span.name == f"chat {exchange.request['model']}"
        assert attributes["gen_ai.provider.name"] == "anthropic"
        assert span.status.is_ok is (exchange.status < 400)
