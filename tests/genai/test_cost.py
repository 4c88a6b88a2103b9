"""The cached cost estimator matches ``pricing.estimate_cost``; the cost totals behind the
observable ``rlm.client.cost`` counter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rlm_toolkit import pricing
from rlm_toolkit.genai import CostEstimator, Instruments

#: Distinct attribute sets the cost totals keep before folding new ones into the overflow set.
MAX_COST_SERIES = 2000


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    pricing._reset_overrides()
    yield
    pricing._reset_overrides()


@pytest.mark.parametrize("model", ["gpt-4o-mini-2024-07-18", "gpt-4o", "GPT-4O", "o1-mini", "no-such-model"])
@pytest.mark.parametrize("tokens", [(21, 8, 0), (1000, 0, 400), (5, 5, 50)])
def test_same_numbers_as_estimate_cost(model: str, tokens: tuple[int, int, int]) -> None:
    inp, out, cached = tokens
    estimator = CostEstimator()
    for _ in range(2):  # cold, then cached
        got = estimator(model, input_tokens=inp, output_tokens=out, cached_input_tokens=cached)
        want = pricing.estimate_cost(model, input_tokens=inp, output_tokens=out, cached_input_tokens=cached)
        assert got == pytest.approx(want, rel=1e-12) if want is not None else got is None


def test_overrides_invalidate_the_cache() -> None:
    estimator = CostEstimator()
    assert estimator("my-model", input_tokens=1_000_000, output_tokens=0) is None
    pricing.set_price("my-model", input=2.0, output=4.0)
    assert estimator("my-model", input_tokens=1_000_000, output_tokens=0) == 2.0
    pricing.set_price("my-model", input=3.0, output=4.0)
    assert estimator("my-model-2025", input_tokens=0, output_tokens=1_000_000) == 4.0
    assert estimator("my-model", input_tokens=1_000_000, output_tokens=0) == 3.0
    pricing._reset_overrides()
    assert estimator("my-model", input_tokens=1_000_000, output_tokens=0) is None


def test_the_cache_reads_the_table_price_overrides_returns() -> None:
    """The estimator's hit path reads ``pricing._overrides`` (no call per LLM call): if
    ``pricing`` renamed it, the cache would never see an override change."""
    assert CostEstimator()._cacheable
    pricing.set_price("pinned-model", input=1.0, output=1.0)
    try:
        assert pricing._overrides is pricing.price_overrides()
    finally:
        pricing._reset_overrides()
    assert pricing._overrides is pricing.price_overrides()


def test_totals_are_observed_as_a_monotonic_sum() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = Instruments(provider.get_meter("t"))
    a, b = {"gen_ai.request.model": "a"}, {"gen_ai.request.model": "b"}
    instruments.cost.add(0.25, a)
    instruments.cost.add(0.5, dict(a))  # equal attributes, another dict: same series
    instruments.cost.add(1.0, b, key=("b",))
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert (metric.name, metric.unit, metric.data.is_monotonic) == ("rlm.client.cost", "USD", True)
    assert sorted((dict(p.attributes)["gen_ai.request.model"], p.value) for p in metric.data.data_points) == [
        ("a", 0.75),
        ("b", 1.0),
    ]
    provider.shutdown()


def test_totals_fold_new_series_into_overflow_when_full() -> None:
    totals = Instruments(MeterProvider().get_meter("t")).cost
    for i in range(MAX_COST_SERIES + 5):
        totals.add(1.0, {"m": i})
    observed = {tuple(sorted(o.attributes.items())): o.value for o in totals.observe(None)}  # type: ignore[arg-type]
    assert len(observed) == MAX_COST_SERIES + 1
    assert observed[(("otel.metric.overflow", True),)] == 5.0
