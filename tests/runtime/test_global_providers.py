"""With providers the app set globally, RLM exports there and never replaces them.

Global providers can be set once per process, so this runs in a subprocess.
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
    import json, sys
    from opentelemetry import trace, _logs
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk._logs import LoggerProvider

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger_provider = LoggerProvider()
    _logs.set_logger_provider(logger_provider)

    from rlm_toolkit import RLM
    from rlm_toolkit.callbacks import BaseCallback

    class Names(BaseCallback):
        def __init__(self):
            self.names = []
        def on_llm_start(self, prompt, **kwargs):
            self.names.append("llm_start")
        def on_llm_end(self, response, **kwargs):
            self.names.append("llm_end")

    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
    import openai, wrapt

    instrumented_before = OpenAIInstrumentor().is_instrumented_by_opentelemetry
    names = Names()
    with_cb = RLM.from_openai("gpt-4o", callbacks=[names], api_key=sys.argv[1], base_url=sys.argv[2])
    no_cb = RLM.from_openai("gpt-4o", api_key=sys.argv[1], base_url=sys.argv[2])
    first = with_cb.run("one")
    second = no_cb.run("two")
    create = openai.resources.chat.completions.Completions.__dict__["create"]
    spans = exporter.get_finished_spans()
    print(json.dumps({
        "instrumented": [instrumented_before, OpenAIInstrumentor().is_instrumented_by_opentelemetry],
        "create_unpatched": not isinstance(create, wrapt.FunctionWrapper),
        "same_provider": trace.get_tracer_provider() is provider,
        "same_logger_provider": _logs.get_logger_provider() is logger_provider,
        "spans": [s.name for s in spans],
        "callbacks": names.names,
        "trace_ids": [first.trace_id, second.trace_id],
        "exported_trace_ids": sorted({format(s.context.trace_id, "032x") for s in spans}),
    }))
    """
)


def test_rlm_exports_to_the_apps_global_providers_without_replacing_them() -> None:
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
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # The RLMs report their own calls through the handler they pass down: openai is not
    # instrumented process-wide (the app's own openai calls stay the app's business).
    assert out["instrumented"] == [False, False]
    assert out["create_unpatched"]
    assert out["same_provider"] and out["same_logger_provider"]
    assert out["spans"] == ["chat gpt-4o", "invoke_agent rlm", "chat gpt-4o", "invoke_agent rlm"]
    assert out["callbacks"] == ["llm_start", "llm_end"]  # only the RLM with callbacks, only its run
    assert all(out["trace_ids"])
    assert sorted(out["trace_ids"]) == out["exported_trace_ids"]


LATE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace, _logs
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    import openai
    from rlm_toolkit import RLM
    from rlm_toolkit.callbacks import BaseCallback
    from rlm_toolkit.testing import OpenAIServer

    server = OpenAIServer().start()

    class Names(BaseCallback):
        def __init__(self):
            self.names = []
        def on_run_start(self, prompt, **kwargs):
            self.names.append("run_start " + prompt)
        def on_llm_start(self, prompt, **kwargs):
            self.names.append("llm_start")
        def on_retry(self, attempt, max_attempts, error, **kwargs):
            self.names.append("retry")

    # Module level, before the app configures OpenTelemetry (the usual import order).
    names = Names()
    rlm = RLM.from_openai("gpt-4o", callbacks=[names], api_key=sys.argv[1], base_url=server.base_url)
    rlm.run("early")  # no providers yet: a private pipeline, seen by callbacks only

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _logs.set_logger_provider(logger_provider)

    server.queue_fault("rate_limit", retry_after=0.0)  # the late run retries once: an event
    late = rlm.run("late")
    with openai.OpenAI(api_key=sys.argv[1], base_url=server.base_url, max_retries=0) as plain:
        plain.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "plain"}])
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    print(json.dumps({
        "spans": [[s.name, by_id[s.parent.span_id].name if s.parent else None] for s in spans],
        "late_trace": late.trace_id == format(spans[1].context.trace_id, "032x"),
        "callbacks": names.names,
        "events": [r.log_record.event_name for r in logs.get_finished_logs()],
        "requests": [r.body["messages"][0]["content"] for r in server.requests],
    }))
    server.stop()
    """
)


def test_rlm_built_before_the_app_sets_global_providers_exports_to_them() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env["RLM_TOOLKIT_STRICT"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", LATE_SCRIPT, API_KEY], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        # The late run (with its LLM span as a child) reaches the app's provider; the early run
        # stayed private; the app's own plain call is not instrumented (an RLM reports its own
        # calls and patches nothing process-wide).
        "spans": [["chat gpt-4o", "invoke_agent rlm"], ["invoke_agent rlm", None]],
        "late_trace": True,
        "callbacks": ["run_start early", "llm_start", "run_start late", "llm_start", "retry"],
        "events": ["rlm.retry"],  # the late run's retry event reached the app's logger provider
        "requests": ["early", "late", "late", "plain"],
    }
