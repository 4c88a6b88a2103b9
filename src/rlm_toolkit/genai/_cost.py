"""Per-call cost from the price table, cheap enough for the hot path.

``rlm_toolkit.pricing.estimate_cost`` resolves a model name by trying ever shorter prefixes
(``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini-2024-07`` -> ...) and validates its arguments on
every call: ~17k instructions, more than the rest of our per-call logic. The same few model
names repeat on every call, so :class:`CostEstimator` remembers each name's
:class:`~rlm_toolkit.pricing.Price` (or that it has none) and applies the same formula.

User overrides (``set_price`` / ``load_prices``) replace ``pricing``'s override table rather
than mutating it, so the cache is dropped whenever that table is a different object than the
one the cache was filled against. A cache hit reads that table as ``pricing._overrides`` (what
``pricing.price_overrides()`` returns; ``tests/genai/test_cost.py`` pins the two the same), a
module attribute read rather than a call per LLM call. If the table cannot be seen (a future
``pricing`` without it), nothing is cached and every call asks ``pricing.get_price``.

The provider matters (``pricing.PRICED_PROVIDERS``): the bundled table is OpenAI's, so for
another provider only user overrides price a model. Such calls are cached under a separate key.
"""

from __future__ import annotations

from typing import Any

_NOT_PRICED = object()
_MAX_MODELS = 256  # model names come from user input: keep the cache bounded


class CostEstimator:
    """The bundled cost function a :class:`~rlm_toolkit.genai.TelemetryHandler` takes as
    ``cost=``: ``estimator(model, input_tokens=, output_tokens=, cached_input_tokens=,
    provider=, cache_write_input_tokens=, cache_write_1h_input_tokens=)`` -> USD, or None when the model has no known price at
    that provider (``input_tokens`` counts the cache reads and writes, as the conventions do).

    Same numbers as ``rlm_toolkit.pricing.estimate_cost`` (user overrides included), cached per
    model name. Thread-safe (a racing miss computes the same price twice); never raises for
    counts from an API's usage object."""

    __slots__ = ("_cache", "_cacheable", "_pricing", "_seen")

    def __init__(self) -> None:
        from rlm_toolkit import pricing

        self._pricing: Any = pricing
        self._cacheable = callable(getattr(pricing, "price_overrides", None)) and hasattr(
            pricing, "_overrides"
        )
        self._cache: dict[str, Any] = {}
        self._seen: object = None

    def price(self, model: str, provider: str | None = None) -> Any:
        """The ``Price`` of ``model`` or None (cached while the user overrides are unchanged)."""
        pricing = self._pricing
        if not self._cacheable:
            return pricing.get_price(model, provider)
        key = model if provider is None or provider in pricing.PRICED_PROVIDERS else f"\0{provider}\0{model}"
        overrides = pricing.price_overrides()
        if overrides is not self._seen:
            self._cache = {}
            self._seen = overrides
        price = self._cache.get(key)
        if price is None:
            price = pricing.get_price(model, provider)
            if len(self._cache) >= _MAX_MODELS:
                self._cache = {}
            self._cache[key] = _NOT_PRICED if price is None else price
            return price
        return None if price is _NOT_PRICED else price

    def __call__(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        provider: str | None = None,
        cache_write_input_tokens: int = 0,
        cache_write_1h_input_tokens: int = 0,
    ) -> float | None:
        if cache_write_input_tokens:
            # Cache writes (Anthropic's, at 1.25x input, 2x for the 1-hour part) are priced by the table that knows
            # their rate; they come with the first call of a cached prefix only, so this
            # uncached path (~17k instructions) is rare.
            return self._pricing.estimate_cost(  # type: ignore[no-any-return]
                model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached_input_tokens,
                provider=provider,
                cache_write_input_tokens=cache_write_input_tokens,
                cache_write_1h_input_tokens=cache_write_1h_input_tokens,
            )
        if provider is not None and provider not in self._pricing.PRICED_PROVIDERS:
            price = self.price(model, provider)
            if price is None:
                return None
        else:
            # Inline cache hit (the common case); ``price`` handles misses and override changes.
            hit = self._cacheable and self._pricing._overrides is self._seen
            price = self._cache.get(model) if hit else None
        if price is None:
            price = self.price(model)
            if price is None:
                return None
        elif price is _NOT_PRICED:
            return None
        # The formula of ``pricing.estimate_cost`` (a test pins them equal); token counts here
        # come from the API's usage object, so they are ints >= 0 already.
        cached = min(cached_input_tokens, input_tokens) if cached_input_tokens else 0
        cached_rate = price.input if price.cached_input is None else price.cached_input
        total = (input_tokens - cached) * price.input + cached * cached_rate + output_tokens * price.output
        return float(total / 1_000_000)
