"""Instruments carry the conventions' names, units and bucket advice."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rlm_toolkit.genai import Instruments


def test_names_units_and_buckets() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = Instruments(provider.get_meter("t"))
    instruments.duration.record(0.5, {})
    instruments.token_usage.record(10, {})
    instruments.time_to_first_chunk.record(0.1, {})
    instruments.time_per_chunk.record(0.02, {})
    instruments.retries.add(1, {})
    instruments.cost.add(0.25, {})
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {name: m.unit for name, m in metrics.items()} == {
        "gen_ai.client.operation.duration": "s",
        "gen_ai.client.token.usage": "{token}",
        "gen_ai.client.operation.time_to_first_chunk": "s",
        "gen_ai.client.operation.time_per_output_chunk": "s",
        "rlm.client.retries": "{retry}",
        "rlm.client.cost": "USD",
    }
    bounds = {
        n: tuple(m.data.data_points[0].explicit_bounds) for n, m in metrics.items() if n.startswith("gen_ai")
    }
    assert bounds["gen_ai.client.operation.duration"] == bounds["gen_ai.client.operation.time_to_first_chunk"]
    assert bounds["gen_ai.client.operation.duration"][:3] == (0.01, 0.02, 0.04)
    assert bounds["gen_ai.client.operation.time_per_output_chunk"][:3] == (0.01, 0.025, 0.05)
    assert bounds["gen_ai.client.token.usage"][:3] == (1, 4, 16)
    provider.shutdown()
