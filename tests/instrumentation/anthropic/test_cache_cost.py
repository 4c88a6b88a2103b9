"""Prompt caching priced as Anthropic bills it: cache writes at 1.25x input, hits at 0.1x, on the
span (``gen_ai.usage.cost``) and the cost metric, through the real SDK over real HTTP to the
offline server (which honours ``cache_control`` breakpoints), sync, async and streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import rlm_toolkit
from rlm_toolkit.pricing import estimate_cost, get_price

from ..conftest import Otel, instrument_with

MODEL = "claude-sonnet-4-5"
LONG = "You are a careful assistant. Answer in one short sentence. " * 40
USER: Any = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture
def system(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """A cacheable system prompt of this test's own (the server's cache outlives a test)."""
    text = f"[{request.node.name}] {LONG}"
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


@pytest.fixture
def inst(otel: Otel) -> Iterator[Otel]:
    instrument_with(otel)
    yield otel
    rlm_toolkit.uninstrument()


def _expected(usage: Any, model: str) -> tuple[float, float]:
    """(cost as Anthropic bills it, the cost if cache writes were priced as plain input)."""
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    total = usage.input_tokens + read + write
    billed = estimate_cost(
        model,
        input_tokens=total,
        output_tokens=usage.output_tokens,
        cached_input_tokens=read,
        cache_write_input_tokens=write,
        provider="anthropic",
    )
    flat = estimate_cost(
        model,
        input_tokens=total,
        output_tokens=usage.output_tokens,
        cached_input_tokens=read,
        provider="anthropic",
    )
    assert billed is not None and flat is not None
    return billed, flat


def _check(otel: Otel, messages: list[Any]) -> None:
    spans = otel.spans()
    assert {s.instrumentation_scope.name for s in spans} == {"rlm_toolkit.instrumentation.anthropic"}  # type: ignore[union-attr]
    assert len(spans) == len(messages) == 2
    first, second = (m.usage for m in messages)
    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    total = 0.0
    for span, message in zip(spans, messages, strict=True):
        a = dict(span.attributes or {})
        billed, flat = _expected(message.usage, message.model)
        assert a["gen_ai.usage.cost"] == pytest.approx(billed, rel=1e-12)
        assert a["gen_ai.usage.cache_read.input_tokens"] == message.usage.cache_read_input_tokens
        assert a["gen_ai.usage.cache_creation.input_tokens"] == message.usage.cache_creation_input_tokens
        total += billed
    # the write is priced above the flat input rate: the first call's cost proves the rate used
    billed, flat = _expected(first, messages[0].model)
    assert billed > flat
    assert sum(p.value for p in otel.metrics()["rlm.client.cost"]) == pytest.approx(total)


def test_cache_writes_and_hits_priced_as_billed_sync(
    inst: Otel, anth: anthropic.Anthropic, system: Any
) -> None:
    messages = [
        anth.messages.create(model=MODEL, max_tokens=50, system=system, messages=USER) for _ in range(2)
    ]
    _check(inst, messages)


async def test_cache_writes_and_hits_priced_as_billed_async(
    inst: Otel, aanth: anthropic.AsyncAnthropic, system: Any
) -> None:
    messages = [
        await aanth.messages.create(model=MODEL, max_tokens=50, system=system, messages=USER)
        for _ in range(2)
    ]
    _check(inst, messages)


def test_cache_writes_and_hits_priced_as_billed_streamed(
    inst: Otel, anth: anthropic.Anthropic, system: Any
) -> None:
    messages = []
    for _ in range(2):
        with anth.messages.stream(model=MODEL, max_tokens=50, system=system, messages=USER) as stream:
            messages.append(stream.get_final_message())
    _check(inst, messages)


def test_offline_server_caches_a_growing_conversation(anth: anthropic.Anthropic, system: Any) -> None:
    """Top-level ``cache_control`` (automatic caching): each turn reads the prefix the previous
    turn wrote (a hit found by the block-boundary lookback) and writes its own; a 1-hour TTL
    breakpoint's writes are reported apart in ``cache_creation``."""
    text = system[0]["text"]
    turns: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "first question"}]}]
    first = anth.messages.create(
        model=MODEL, max_tokens=20, system=text, messages=turns, cache_control={"type": "ephemeral"}
    )
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    turns += [
        {"role": "assistant", "content": [{"type": "text", "text": first.content[0].text}]},  # type: ignore[union-attr]
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    second = anth.messages.create(
        model=MODEL, max_tokens=20, system=text, messages=turns, cache_control={"type": "ephemeral"}
    )
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens > 0
    assert second.usage.cache_creation.ephemeral_1h_input_tokens == 0  # type: ignore[union-attr]
    counted = anth.messages.count_tokens(model=MODEL, system=text, messages=turns)
    u = second.usage
    assert u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens == counted.input_tokens
    hour: Any = [
        {"type": "text", "text": text + " (hourly)", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    third = anth.messages.create(model=MODEL, max_tokens=20, system=hour, messages=USER)
    creation = third.usage.cache_creation
    assert (
        creation is not None
        and creation.ephemeral_1h_input_tokens == third.usage.cache_creation_input_tokens > 0
    )


def _hourly(system: Any) -> Any:
    return [{**system[0], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]


def _check_hourly(otel: Otel, message: Any) -> None:
    """A 1-hour-TTL write is priced at 2x input (not the 5-minute 1.25x) on span and metric."""
    (span,) = otel.spans()
    usage = message.usage
    write = usage.cache_creation_input_tokens
    assert write > 0 and usage.cache_creation.ephemeral_1h_input_tokens == write
    price = get_price(MODEL, "anthropic")
    assert price is not None
    total = usage.input_tokens + write
    expected = (
        usage.input_tokens * price.input + write * 2 * price.input + usage.output_tokens * price.output
    ) / 1e6
    cost = dict(span.attributes or {})["gen_ai.usage.cost"]
    assert isinstance(cost, float) and cost == pytest.approx(expected, rel=1e-12)
    five_minute = estimate_cost(
        MODEL,
        input_tokens=total,
        output_tokens=usage.output_tokens,
        cache_write_input_tokens=write,
        provider="anthropic",
    )
    assert five_minute is not None and cost > five_minute
    assert sum(p.value for p in otel.metrics()["rlm.client.cost"]) == pytest.approx(expected)


def test_one_hour_cache_writes_priced_at_twice_input(
    inst: Otel, anth: anthropic.Anthropic, system: Any
) -> None:
    message = anth.messages.create(model=MODEL, max_tokens=50, system=_hourly(system), messages=USER)
    _check_hourly(inst, message)


def test_one_hour_cache_writes_priced_at_twice_input_streamed(
    inst: Otel, anth: anthropic.Anthropic, system: Any
) -> None:
    with anth.messages.stream(model=MODEL, max_tokens=50, system=_hourly(system), messages=USER) as stream:
        message = stream.get_final_message()
    _check_hourly(inst, message)
