"""RLM instruments nothing process-wide (it reports its own calls through the handler it
passes down); a later explicit ``rlm_toolkit.instrument()`` is followed, for the LLM spans and
the run span alike; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_openai`` is honoured.

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


def test_explicit_instrument_after_rlm_is_followed() -> None:
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
        "implicit": False,  # RLM(...) patched nothing
        "before": [],
        "after": [["chat gpt-4o", "invoke_agent rlm"], ["invoke_agent rlm", None]] * 3,
        "traces": 3,
        "attempts": [1, None] * 3,
        "answer": True,
    }


DISABLED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import openai, wrapt
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from rlm_toolkit import RLM
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    rlm = RLM.from_openai("gpt-4o", api_key=sys.argv[1], base_url=sys.argv[2])
    rlm.run("from the rlm")
    with openai.OpenAI(api_key=sys.argv[1], base_url=sys.argv[2]) as app_client:
        app_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "app"}])
    create = openai.resources.chat.completions.Completions.__dict__["create"]
    print(json.dumps({
        "instrumented": OpenAIInstrumentor().is_instrumented_by_opentelemetry,
        "patched": isinstance(create, wrapt.FunctionWrapper),
        "spans": [s.name for s in exporter.get_finished_spans()],
    }))
    """
)


def test_disabled_instrumentation_stays_disabled_under_opentelemetry_instrument() -> None:
    """Issue #22 item 14: an RLM made under ``opentelemetry-instrument`` with
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_openai`` used to instrument openai anyway
    (implicitly, process-wide). Now the app's own calls stay unpatched and unreported, and the
    RLM still reports its own run and call."""
    instrument = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    with OpenAIServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
        env.update(
            RLM_TOOLKIT_STRICT="1",
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="rlm_openai",
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        proc = subprocess.run(
            [instrument, sys.executable, "-c", DISABLED_SCRIPT, API_KEY, server.base_url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert [r.body["messages"][0]["content"] for r in server.requests] == ["from the rlm", "app"]
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "instrumented": False,
        "patched": False,
        "spans": ["chat gpt-4o", "invoke_agent rlm"],
    }
