"""Anthropic's prices, dated, with prompt caching priced the way Anthropic prices it.

USD per 1M tokens, standard tier, prompts up to the long-context threshold. Anthropic bills
each input token in exactly one category: uncached input at the base rate, a cache write at
1.25x base (5-minute TTL, the default) or 2x base (1-hour TTL), a cache hit at 0.1x base
(Claude Haiku 3's rows deviate from the multipliers: its figures are kept as published).

Sources (checked :data:`ANTHROPIC_PRICES_AS_OF`):
- rates: https://platform.claude.com/docs/en/about-claude/pricing ("Model pricing": Opus 4.7,
  4.6, 4.5, 4.1) and its localized copy https://platform.claude.com/docs/zh-CN/about-claude/pricing
  (Opus 4, Sonnet 4.6, 4.5, 4, 3.7, Haiku 4.5, 3.5, Opus 3, Haiku 3; same table, one revision
  earlier), which also states the multipliers above;
- model ids: https://platform.claude.com/docs/claude/docs/models-overview (claude-opus-4-7,
  claude-sonnet-4-6, claude-haiku-4-5-20251001) and
  https://platform.claude.com/docs/zh-CN/docs/about-claude/models/overview (claude-opus-4-6,
  claude-sonnet-4-5-20250929).
Models whose API id could not be confirmed there (Fable, Mythos, Opus 4.8/5) are left out:
unpriced, never a neighbour's price. Not modelled: batch (-50%), long-context (>200K input)
and data-residency surcharges, server-tool fees.

Nothing here touches the network or imports ``anthropic``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: The day the figures below were checked against the sources in the module docstring.
ANTHROPIC_PRICES_AS_OF: Final = "2026-12-05"
#: Anthropic's prompt-cache multipliers of the base input rate.
CACHE_WRITE_5M_MULTIPLIER: Final = 1.25
CACHE_WRITE_1H_MULTIPLIER: Final = 2.0
CACHE_READ_MULTIPLIER: Final = 0.1

_PER_TOKENS: Final = 1_000_000


@dataclass(frozen=True)
class AnthropicPrice:
    """USD per 1M tokens: base input, 5-minute and 1-hour cache writes, cache hits, output."""

    input: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    output: float


def _p(input: float, write_5m: float, write_1h: float, read: float, output: float) -> AnthropicPrice:
    return AnthropicPrice(input, write_5m, write_1h, read, output)


_OPUS_45: Final = _p(5, 6.25, 10, 0.50, 25)
_OPUS_4: Final = _p(15, 18.75, 30, 1.50, 75)
_SONNET_4: Final = _p(3, 3.75, 6, 0.30, 15)

#: Model id (the API's alias, without a date suffix) -> price.
PRICES: Final[Mapping[str, AnthropicPrice]] = {
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-4-5": _p(1, 1.25, 2, 0.10, 5),
    "claude-3-5-haiku": _p(0.80, 1, 1.6, 0.08, 4),
    "claude-3-opus": _OPUS_4,
    "claude-3-haiku": _p(0.25, 0.30, 0.50, 0.03, 1.25),
}

# A dated snapshot id is its alias plus ``-YYYYMMDD`` (``claude-sonnet-4-20250514``); ``-latest``
# names the alias too. Nothing else is stripped: ``claude-opus-4-8`` is not ``claude-opus-4``.
_SUFFIX: Final = re.compile(r"-(?:\d{8}|latest)$")


def get_anthropic_price(model: str) -> AnthropicPrice | None:
    """The price of ``model`` (an API id or alias, dated or not); ``None`` when not in the table.

    Raises:
        TypeError: ``model`` is not a string.
    """
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, got {type(model).__name__}")
    price = PRICES.get(model)
    if price is None:
        price = PRICES.get(_SUFFIX.sub("", model))
    return price


def _tokens(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def anthropic_cost(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> float | None:
    """Estimated USD cost of one call, or ``None`` when ``model`` is not priced.

    Args:
        input_tokens: every input token, as the conventions' ``gen_ai.usage.input_tokens``
            counts them (uncached + cache reads + cache writes).
        output_tokens: output tokens (thinking included, as Anthropic bills them).
        cache_read_tokens: ``cache_read_input_tokens``, priced at the cache-hit rate.
        cache_write_tokens: ``cache_creation_input_tokens`` (all TTLs), priced at the
            5-minute write rate except the part given as ``cache_write_1h_tokens``.
        cache_write_1h_tokens: the part of the writes with a 1-hour TTL
            (``cache_creation.ephemeral_1h_input_tokens``), priced at the 1-hour rate.

    Raises:
        ValueError: a count is negative or not an int, the 1-hour writes exceed the writes, or
            the reads and writes exceed ``input_tokens``.
    """
    total = _tokens(input_tokens, "input_tokens")
    output = _tokens(output_tokens, "output_tokens")
    read = _tokens(cache_read_tokens, "cache_read_tokens")
    write = _tokens(cache_write_tokens, "cache_write_tokens")
    write_1h = _tokens(cache_write_1h_tokens, "cache_write_1h_tokens")
    if write_1h > write:
        raise ValueError(f"cache_write_1h_tokens ({write_1h}) exceeds cache_write_tokens ({write})")
    if read + write > total:
        raise ValueError(
            f"cache reads + writes ({read + write}) exceed input_tokens ({total}); "
            "input_tokens must count every input token (uncached + cache reads + cache writes)"
        )
    price = get_anthropic_price(model)
    if price is None:
        return None
    cost = (
        (total - read - write) * price.input
        + read * price.cache_read
        + (write - write_1h) * price.cache_write_5m
        + write_1h * price.cache_write_1h
        + output * price.output
    ) / _PER_TOKENS
    return cost if math.isfinite(cost) else None
