"""Evals fixtures: generated offline tasks, the bundled server, worker telemetry to a JSONL file."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rlm_toolkit.evals import needle_tasks
from rlm_toolkit.testing import OFFLINE_API_KEY, OpenAIServer


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def small_tasks(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Six 10k-character needle tasks (fast on a loaded 2-core machine)."""
    return needle_tasks(str(tmp_path_factory.mktemp("niah")), count=6, chars=10_000, seed=3)


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory: pytest.TempPathFactory, server: OpenAIServer) -> Iterator[str]:
    """Workers inherit: the offline key and URL, spans and records to a JSONL file (returned)."""
    traces = str(tmp_path_factory.mktemp("traces") / "traces.jsonl")
    values = {
        "OPENAI_API_KEY": OFFLINE_API_KEY,
        "OPENAI_BASE_URL": server.base_url,
        "RLM_INSTRUMENT_JSONL": traces,
        "OTEL_TRACES_EXPORTER": "jsonl",
        "OTEL_LOGS_EXPORTER": "jsonl",
        "OTEL_METRICS_EXPORTER": "none",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield traces
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
