"""RLM instruments ``openai`` implicitly; a later explicit ``rlm_toolkit.instrument()`` wins,
for the LLM spans and the run span alike.

Instrumentation is process-wide state, so this runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from rlm_toolkit.testing import OpenAIServer

from .helpers import API_KEY

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import rlm_toolkit
    from rlm_toolkit import RLM
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    rlm = RLM.from_openai("gpt-4o", api_key=sys.argv[1], base_url=sys.argv[2])
    implicit = OpenAIInstrumentor().is_instrumented_by_opentelemetry
    rlm.run("before")  # default providers: nothing configured, nothing recorded
    before = [s.name for s in exporter.get_finished_spans()]
    rlm_toolkit.instrument(tracer_provider=provider)
    result = rlm.run("after")
    asyncio.run(rlm.arun("after, async"))
    with rlm.stream("after, streamed") as tokens:
        streamed = "".join(tokens)
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    def parent(span):
        return by_id[span.parent.span_id].name if span.parent is not None else None

    print(json.dumps({
        "implicit": implicit,
        "before": before,
        "after": [[s.name, parent(s)] for s in spans],
        "traces": len({s.context.trace_id for s in spans}),
        "attempts": [dict(s.attributes).get("rlm.request.attempts") for s in spans],
        "answer": bool(result.answer) and bool(streamed),
    }))
    """
)


def test_explicit_instrument_after_rlm_replaces_the_implicit_one() -> None:
    with OpenAIServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
        env["RLM_TOOLKIT_STRICT"] = "1"
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, API_KEY, server.base_url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert [r.body["messages"][0]["content"] for r in server.requests] == [
            "before",
            "after",
            "after, async",
            "after, streamed",
        ]
    assert proc.returncode == 0, proc.stderr
    # After the explicit instrument(tracer_provider=X) with a non-global X, each run's span and
    # its LLM span are in X, one tree per run (the run span uses the instrumentation's tracer).
    assert json.loads(proc.stdout) == {
        "implicit": True,
        "before": [],
        "after": [["chat gpt-4o", "invoke_agent rlm"], ["invoke_agent rlm", None]] * 3,
        "traces": 3,
        "attempts": [1, None] * 3,
        "answer": True,
    }
