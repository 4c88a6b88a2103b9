"""The dated Anthropic price table: lookups, cache pricing and bad input."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest
import yaml

from rlm_toolkit._anthropic_prices import (
    ANTHROPIC_PRICES_AS_OF,
    CACHE_READ_MULTIPLIER,
    CACHE_WRITE_1H_MULTIPLIER,
    CACHE_WRITE_5M_MULTIPLIER,
    PRICES,
    AnthropicPrice,
    anthropic_cost,
    get_anthropic_price,
)

CASSETTES = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "cassettes" / "anthropic-genai"


def test_table_is_dated() -> None:
    assert datetime.date.fromisoformat(ANTHROPIC_PRICES_AS_OF) <= datetime.date.today()


@pytest.mark.parametrize("model", sorted(PRICES))
def test_cache_rates_follow_anthropics_multipliers(model: str) -> None:
    price = PRICES[model]
    if model == "claude-3-haiku":  # published as 0.30 / 0.50 / 0.03, not 1.25x / 2x / 0.1x of 0.25
        assert price == AnthropicPrice(0.25, 0.30, 0.50, 0.03, 1.25)
        return
    assert price.cache_write_5m == pytest.approx(price.input * CACHE_WRITE_5M_MULTIPLIER)
    assert price.cache_write_1h == pytest.approx(price.input * CACHE_WRITE_1H_MULTIPLIER)
    assert price.cache_read == pytest.approx(price.input * CACHE_READ_MULTIPLIER)
    assert price.output == pytest.approx(price.input * 5)


def test_published_figures() -> None:
    assert get_anthropic_price("claude-opus-4-7") == AnthropicPrice(5, 6.25, 10, 0.5, 25)
    assert get_anthropic_price("claude-opus-4-1") == AnthropicPrice(15, 18.75, 30, 1.5, 75)
    assert get_anthropic_price("claude-sonnet-4-6") == AnthropicPrice(3, 3.75, 6, 0.3, 15)
    assert get_anthropic_price("claude-haiku-4-5") == AnthropicPrice(1, 1.25, 2, 0.1, 5)
    assert get_anthropic_price("claude-3-5-haiku") == AnthropicPrice(0.8, 1, 1.6, 0.08, 4)


def test_dated_ids_and_aliases_resolve_neighbours_do_not() -> None:
    assert get_anthropic_price("claude-sonnet-4-20250514") is PRICES["claude-sonnet-4"]
    assert get_anthropic_price("claude-haiku-4-5-20251001") is PRICES["claude-haiku-4-5"]
    assert get_anthropic_price("claude-opus-4-20250514") is PRICES["claude-opus-4"]
    assert get_anthropic_price("claude-opus-4-1-20250805") is PRICES["claude-opus-4-1"]
    assert get_anthropic_price("claude-3-7-sonnet-latest") is PRICES["claude-3-7-sonnet"]
    # Unpriced, never a neighbour's price ($15 Opus 4 for an unknown $5 Opus, say).
    for unknown in ("claude-opus-4-8", "claude-opus-5", "claude-sonnet-4-6-fast", "gpt-4o", "", "claude"):
        assert get_anthropic_price(unknown) is None
    assert anthropic_cost("claude-opus-4-8", input_tokens=10, output_tokens=10) is None
    with pytest.raises(TypeError, match="model must be a str"):
        get_anthropic_price(None)  # type: ignore[arg-type]


def test_every_recorded_model_is_priced() -> None:
    if not CASSETTES.is_dir():
        pytest.skip("anthropic-genai cassettes not available")
    models = set()
    for path in CASSETTES.glob("*.yaml"):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            models.add(json.loads(interaction["request"]["body"])["model"])
    models.discard("invalid-model-name")
    assert models and all(get_anthropic_price(m) is not None for m in models), models


def test_cost_prices_each_input_category_once() -> None:
    # Sonnet 4: 1,000 uncached + 10,000 cache hits + 2,000 writes (500 of them 1-hour), 300 output.
    cost = anthropic_cost(
        "claude-sonnet-4-20250514",
        input_tokens=13_000,
        output_tokens=300,
        cache_read_tokens=10_000,
        cache_write_tokens=2_000,
        cache_write_1h_tokens=500,
    )
    expected = (1_000 * 3 + 10_000 * 0.3 + 1_500 * 3.75 + 500 * 6 + 300 * 15) / 1_000_000
    assert cost == pytest.approx(expected)
    assert anthropic_cost("claude-haiku-4-5", input_tokens=1_000_000, output_tokens=0) == pytest.approx(1.0)
    assert anthropic_cost("claude-haiku-4-5", input_tokens=0, output_tokens=1_000_000) == pytest.approx(5.0)
    # All of it a cache hit: a tenth of the base price.
    assert anthropic_cost(
        "claude-haiku-4-5", input_tokens=1_000_000, output_tokens=0, cache_read_tokens=1_000_000
    ) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, "input_tokens must be an int >= 0"),
        ({"input_tokens": 1, "output_tokens": 1.5}, "output_tokens must be an int >= 0"),
        ({"input_tokens": 1, "output_tokens": 0, "cache_read_tokens": True}, "cache_read_tokens must be"),
        (
            {"input_tokens": 10, "output_tokens": 0, "cache_write_tokens": 1, "cache_write_1h_tokens": 2},
            "exceeds",
        ),
        (
            {"input_tokens": 10, "output_tokens": 0, "cache_read_tokens": 8, "cache_write_tokens": 3},
            "exceed input",
        ),
    ],
)
def test_bad_counts_name_the_problem(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        anthropic_cost("claude-sonnet-4", **kwargs)
