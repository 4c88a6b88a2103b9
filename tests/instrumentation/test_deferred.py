"""Surfaces whose SDK module the app has not imported are patched when it is imported, not
imported by us (a fresh interpreter per case: what is imported is process state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from rlm_toolkit.testing import OpenAIServer

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import rlm_toolkit

    lazy = ["openai.resources.embeddings", "openai.resources.responses"]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    before = [m for m in lazy if m in sys.modules]
    rlm_toolkit.instrument(tracer_provider=provider)
    imported_by_us = [m for m in lazy if m in sys.modules]
    if sys.argv[3] == "uninstrument_first":
        rlm_toolkit.uninstrument()
    client = openai.OpenAI(api_key="sk-test", base_url=sys.argv[1], max_retries=0)
    client.embeddings.create(model="text-embedding-3-small", input="x")
    client.responses.create(model="gpt-4o", input="hi")
    rlm_toolkit.uninstrument()
    from openai.resources.embeddings import Embeddings
    print(json.dumps({
        "before": before,
        "imported_by_us": imported_by_us,
        "spans": sorted(s.name for s in exporter.get_finished_spans()),
        "left_wrapped": type(Embeddings.__dict__["create"]).__name__ != "function",
    }))
    """
)


def run(server: OpenAIServer, mode: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.base_url, "", mode],
        capture_output=True,
        text=True,
        env={**env, "RLM_TOOLKIT_STRICT": "1"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_patched_on_import() -> None:
    with OpenAIServer() as server:
        assert run(server, "instrumented") == {
            "before": [],
            "imported_by_us": [],
            "spans": ["chat gpt-4o", "embeddings text-embedding-3-small"],
            "left_wrapped": False,
        }


def test_not_patched_after_uninstrument() -> None:
    with OpenAIServer() as server:
        assert run(server, "uninstrument_first") == {
            "before": [],
            "imported_by_us": [],
            "spans": [],
            "left_wrapped": False,
        }
