"""Estimated cost of OpenAI and Anthropic calls from bundled, dated price tables.

OpenAI's table (``_prices.json`` beside this module) is a snapshot of OpenAI's public price list
in USD per 1M tokens, dated :data:`PRICES_AS_OF` (the rows it lists under ``added``/``checked``
were read that day from OpenAI's model pages, cited there; the rest date from its
``snapshot_of``); Anthropic's (``_anthropic_prices``, dated
``ANTHROPIC_PRICES_AS_OF``) prices prompt caching the way Anthropic bills it (cache writes at
1.25x the base input rate for a 5-minute TTL, 2x for a 1-hour one, cache hits at 0.1x). **Prices change**: treat every number derived
from them as an estimate, and override what you know better with :func:`set_price` or
:func:`load_prices`. Nothing here ever touches the network.

Model names match exactly, or with a trailing date suffix removed, so dated snapshots resolve
to their family: ``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``gpt-3.5-turbo-0125`` ->
``gpt-3.5-turbo``, ``claude-sonnet-4-20250514`` -> ``claude-sonnet-4``. Nothing else is
guessed: ``gpt-5-pro`` is not ``gpt-5`` and ``o3-deep-research`` is not ``o3`` (a guess by
prefix would pick a cheaper model's price). A model not in a table is unpriced (``None``),
visibly, never a neighbour's price.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from rlm_toolkit._anthropic_prices import ANTHROPIC_PRICES_AS_OF, anthropic_cost
from rlm_toolkit._anthropic_prices import PRICES as _ANTHROPIC_TABLE

__all__ = [
    "ANTHROPIC",
    "ANTHROPIC_PRICES_AS_OF",
    "PRICED_PROVIDERS",
    "PRICES_AS_OF",
    "Price",
    "estimate_cost",
    "get_price",
    "load_prices",
    "price_overrides",
    "set_price",
]

#: ``gen_ai.provider.name`` values whose prices the bundled table holds (it is OpenAI's public
#: list). For any other provider (Azure, Groq, a self-hosted server...) only the user's own
#: prices (:func:`set_price`/:func:`load_prices`) apply: a model name they share with OpenAI
#: does not make OpenAI's price theirs, and no cost is better than a wrong one.
PRICED_PROVIDERS: Final = frozenset({"openai"})
#: The ``gen_ai.provider.name`` whose models the bundled Anthropic table prices (cache writes
#: and reads as Anthropic bills them); the user's own prices win over it, as for OpenAI.
ANTHROPIC: Final = "anthropic"

# The only part of a name a lookup may drop: a trailing snapshot date. OpenAI dates snapshots
# ``-YYYY-MM-DD`` (``gpt-4o-2024-08-06``) or ``-MMDD`` (``gpt-4-0613``); Anthropic ``-YYYYMMDD``.
_DATE_SUFFIX: Final = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
# Anthropic's ``-latest`` names the alias too (OpenAI's ``chatgpt-4o-latest`` is its own model).
_ANTHROPIC_SUFFIX: Final = re.compile(r"-(?:\d{8}|latest)$")

_PER_TOKENS: Final = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. ``cached_input`` is ``None`` when the model has no cache discount."""

    input: float
    output: float
    cached_input: float | None = None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def _price(model: str, entry: Any) -> Price:
    if not isinstance(entry, Mapping):
        raise ValueError(f"price of {model!r} must be an object with input/output, got {entry!r}")
    for key in ("input", "output"):
        if key not in entry:
            raise ValueError(f"price of {model!r} lacks {key!r}")
    cached = entry.get("cached_input")
    return Price(
        input=_number(entry["input"], f"{model}.input"),
        output=_number(entry["output"], f"{model}.output"),
        cached_input=None if cached is None else _number(cached, f"{model}.cached_input"),
    )


def _parse_table(data: Any) -> dict[str, Price]:
    """Accept ``{"models": {name: price}}`` (the bundled shape) or a bare ``{name: price}``."""
    if not isinstance(data, Mapping):
        raise ValueError("top level must be a JSON object")
    models = data.get("models", data)
    if not isinstance(models, Mapping):
        raise ValueError("'models' must be an object")
    return {str(name).lower(): _price(str(name), entry) for name, entry in models.items()}


def _load_bundled() -> tuple[str, dict[str, Price]]:
    text = resources.files("rlm_toolkit").joinpath("_prices.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return str(data["as_of"]), _parse_table(data)


PRICES_AS_OF, _BUNDLED = _load_bundled()

# Serialises writers across threads. Reentrant, because code on the same thread may call
# ``set_price`` again while one is in progress (a callback run from a span end, a signal
# handler); ``_replace`` makes sure such a nested update is not lost.
_lock = threading.RLock()
# User overrides win over the bundled table; the dict is replaced, never mutated, so readers
# need no lock (and ``genai._cost`` caches lookups per dict identity).
_overrides: dict[str, Price] = {}


def _replace(update: Mapping[str, Price] | None) -> None:
    """Swap in ``{**_overrides, **update}`` (or ``{}`` for ``None``) without losing a nested
    update: if a re-entrant ``set_price`` runs while the new dict is being built, the snapshot
    is stale and the merge is redone on the newer dict."""
    global _overrides
    with _lock:
        while True:
            base = _overrides
            new = {} if update is None else {**base, **update}
            if _overrides is base:  # nothing replaced it while we built ours
                _overrides = new
                return


def price_overrides() -> Mapping[str, Price]:
    """The user's overrides now in force (model name -> price), read-only.

    The mapping is replaced, never changed, by every :func:`set_price`/:func:`load_prices`, so
    its identity tells a caller (the instrumentation's cost cache) whether prices changed.
    Safe to call from any thread; never raises.
    """
    return _overrides


def get_price(model: str, provider: str | None = None) -> Price | None:
    """The price that applies to ``model``, or ``None`` when unpriced.

    ``model`` matches a name of the overrides or the bundled table exactly, or once its
    trailing date suffix is removed (the exact name first, so a dated row such as
    ``gpt-4o-2024-05-13`` beats its family); at the same name the override wins. No other
    fallback: a name the tables do not hold is unpriced. ``provider`` (a
    ``gen_ai.provider.name``; None: OpenAI): :data:`ANTHROPIC` reads Anthropic's table (its
    ``cached_input`` is the cache-hit rate; cache writes need :func:`estimate_cost`); any other
    provider not in :data:`PRICED_PROVIDERS` is priced by the overrides only.
    """
    if not model:
        return None
    overrides = _overrides
    name = model.lower()
    undated = (_ANTHROPIC_SUFFIX if provider == ANTHROPIC else _DATE_SUFFIX).sub("", name)
    for candidate in (name, undated) if undated != name else (name,):
        price = overrides.get(candidate)
        if price is not None:
            return price
        if provider is None or provider in PRICED_PROVIDERS:
            price = _BUNDLED.get(candidate)
            if price is not None:
                return price
        elif provider == ANTHROPIC:
            found = _ANTHROPIC_TABLE.get(candidate)
            if found is not None:
                return Price(input=found.input, output=found.output, cached_input=found.cache_read)
    return None


def estimate_cost(
    model: str | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    provider: str | None = None,
    cache_write_input_tokens: int = 0,
    cache_write_1h_input_tokens: int = 0,
) -> float | None:
    """Estimated USD cost of one call, or ``None`` when ``model`` is not priced (for
    ``provider``, see :func:`get_price`).

    ``input_tokens`` includes ``cached_input_tokens`` (cache hits) and
    ``cache_write_input_tokens`` (as the API reports them, and as the conventions'
    ``gen_ai.usage.input_tokens`` counts them); cache hits are billed at the cached rate when
    the model has one. For ``provider="anthropic"`` a model of Anthropic's table is priced by
    it: cache writes at 1.25x the input rate (5-minute TTL), the part of them given as
    ``cache_write_1h_input_tokens`` (1-hour TTL, Anthropic's
    ``cache_creation.ephemeral_1h_input_tokens``) at 2x, hits at 0.1x. Elsewhere cache writes
    of either TTL cost the input rate. Raises ``ValueError`` for a count that is not an int >= 0
    or 1-hour writes above ``cache_write_input_tokens``.
    """
    if model is None:
        return None
    for what, count in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cached_input_tokens", cached_input_tokens),
        ("cache_write_input_tokens", cache_write_input_tokens),
        ("cache_write_1h_input_tokens", cache_write_1h_input_tokens),
    ):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{what} must be an int >= 0, got {count!r}")
    if cache_write_1h_input_tokens > cache_write_input_tokens:
        raise ValueError(
            f"cache_write_1h_input_tokens ({cache_write_1h_input_tokens}) exceeds "
            f"cache_write_input_tokens ({cache_write_input_tokens}): the 1-hour writes are part of them"
        )
    if provider == ANTHROPIC and not _overridden(model):  # the table prices cache writes
        read = min(cached_input_tokens, input_tokens)
        write = min(cache_write_input_tokens, input_tokens - read)
        return anthropic_cost(
            model.lower(),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=read,
            cache_write_tokens=write,
            # writes clipped to the input count lose their 1-hour part first (never over-price)
            cache_write_1h_tokens=min(cache_write_1h_input_tokens, write),
        )
    price = get_price(model, provider)
    if price is None:
        return None
    cached = min(cached_input_tokens, input_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    total = (input_tokens - cached) * price.input + cached * cached_rate + output_tokens * price.output
    return total / _PER_TOKENS


def _overridden(model: str) -> bool:
    """The user priced Anthropic ``model`` (or its undated name) themselves."""
    name = model.lower()
    overrides = _overrides
    return name in overrides or _ANTHROPIC_SUFFIX.sub("", name) in overrides


def set_price(model: str, *, input: float, output: float, cached_input: float | None = None) -> None:
    """Price ``model`` (and its dated variants) at USD per 1M tokens, overriding the table."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    price = _price(model, {"input": input, "output": output, "cached_input": cached_input})
    _replace({model.lower(): price})


def load_prices(path: str | os.PathLike[str]) -> None:
    """Merge the prices in JSON file ``path`` into the overrides.

    The file is ``{"models": {"name": {"input": x, "output": y, "cached_input": z}}}`` (the
    bundled shape) or the bare ``{"name": {...}}`` mapping. A bad file raises a one-line
    ``ValueError`` naming the path and the problem; nothing is merged from it.
    """
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as fh:
            data = json.load(fh)
        table = _parse_table(data)
    except OSError as exc:
        raise ValueError(f"cannot read prices from {where}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"cannot read prices from {where}: invalid JSON at line {exc.lineno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise ValueError(f"cannot read prices from {where}: {exc}") from exc
    _replace(table)


def _reset_overrides() -> None:
    """Drop every user override (for tests)."""
    _replace(None)
