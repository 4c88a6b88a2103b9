"""examples/demo_app.py under rlm-instrument, exporting for real to an OTLP receiver."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from otlp.conftest import API_KEY, DEMO, clean_env, run_cli
from otlp.receiver import OTLPReceiver
from rlm_toolkit.exporters import read_spans_jsonl
from rlm_toolkit.testing import OpenAIServer

PROMPT = "Say hello to a new rlm-toolkit user in one sentence."
LLM_SPANS = [
    "chat gpt-4o-mini",  # chat
    "chat gpt-4o-mini",  # stream
    "embeddings text-embedding-3-small",
    "chat gpt-4o-mini",  # Responses API
    "chat gpt-4o-mini",  # tool request (the test server does not script a tool call)
]
#: The demo's recursive run (part 6): the run, 7 model calls, 5 code executions, 1 nested run.
RUN_SPANS = ["invoke_agent rlm"] * 2 + ["chat gpt-4o-mini"] * 7 + ["execute_tool repl"] * 5
NEEDLE_SECRET = "7319-ALPHA"


@pytest.fixture(scope="module")
def baseline_stdout(openai_server: OpenAIServer) -> str:
    """What the demo prints without rlm-instrument: instrumented runs must print the same."""
    openai_server.reset()
    env = clean_env(OPENAI_BASE_URL=openai_server.base_url, OPENAI_API_KEY=API_KEY)
    out = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def by_start(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(spans, key=lambda s: (s["parent_span_id"] != "", s["start"]))


@pytest.mark.parametrize(
    ("protocol", "capture"),
    [("grpc", None), ("http/protobuf", "span_and_event")],
    ids=["grpc-no-content", "http-with-content"],
)
def test_demo_exports_spans_metrics_and_events(
    protocol: str,
    capture: str | None,
    openai_server: OpenAIServer,
    receiver: OTLPReceiver,
    demo_env: dict[str, str],
    baseline_stdout: str,
) -> None:
    # One 429 on the embeddings call: the SDK retries, so a retry event must arrive too.
    openai_server.queue_fault("rate_limit", retry_after=0.05, path="/embeddings")
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    args = ["--endpoint", endpoint, "--protocol", protocol, "--service-name", "demo-under-test"]
    if capture:
        args += ["--capture-content", capture]
    result = run_cli([*args, sys.executable, str(DEMO)], demo_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == baseline_stdout
    assert "── rlm-toolkit telemetry ──" not in result.stderr  # OTLP configured: no terminal tree

    transport = "grpc" if protocol == "grpc" else "http"
    assert {r.transport for r in receiver.received} == {transport}
    spans = receiver.spans()
    root = next(s for s in spans if s["name"] == "demo")
    run = next(s for s in spans if s["name"] == "invoke_agent rlm" and s["parent_span_id"] == root["span_id"])
    llm = sorted(
        (s for s in spans if s["parent_span_id"] == root["span_id"] and s is not run),
        key=lambda s: s["start"],
    )
    assert [s["name"] for s in llm] == LLM_SPANS
    in_run = [s for s in spans if s is not root and s not in llm]
    assert sorted(s["name"] for s in in_run) == sorted(RUN_SPANS)
    assert run["attributes"]["rlm.run.status"] == "final"
    assert run["attributes"]["rlm.run.subcalls"] == 3
    for span in spans:
        assert span["trace_id"] == root["trace_id"]
        assert span["resource"]["service.name"] == "demo-under-test"
    for span in llm:
        attrs = span["attributes"]
        assert span["parent_span_id"] == root["span_id"]
        assert span["kind"] == 3  # SPAN_KIND_CLIENT
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.operation.name"] == span["name"].split()[0]
        assert attrs["gen_ai.request.model"] == span["name"].split()[1]
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == openai_server.port
    chat, stream, embeddings, responses, _tool = llm
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert chat["attributes"]["gen_ai.usage.cost"] > 0
    assert stream["attributes"]["rlm.stream.end_reason"] == "completed"
    assert responses["attributes"]["rlm.openai.api"].startswith("responses.")
    assert embeddings["attributes"]["rlm.request.attempts"] == 2
    (retry_name, retry_attrs) = embeddings["events"][0]
    assert retry_name == "rlm.retry"
    assert retry_attrs["rlm.retry.attempt"] == 1 and retry_attrs["http.response.status_code"] == 429

    metrics = receiver.metrics()
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= set(metrics)
    for name in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        resource, metric = metrics[name][-1]
        assert resource["service.name"] == "demo-under-test"
        assert sum(p.count for p in metric.histogram.data_points) >= len(LLM_SPANS)

    logs = receiver.logs()
    retries = [r for r in logs if r["event_name"] == "rlm.retry"]
    assert len(retries) == 1
    assert retries[0]["span_id"] == embeddings["span_id"]
    assert retries[0]["resource"]["service.name"] == "demo-under-test"

    wire = b"".join(r.request.SerializeToString() for r in receiver.received)
    assert API_KEY.encode() not in wire  # never exported, capture or not
    details = [r for r in logs if r["event_name"] == "gen_ai.client.inference.operation.details"]
    if capture:
        assert PROMPT in chat["attributes"]["gen_ai.input.messages"]
        assert details and any(PROMPT in json.dumps(r["attributes"], default=str) for r in details)
    else:
        assert PROMPT.encode() not in wire
        assert NEEDLE_SECRET.encode() not in wire  # the context and the sub-calls are content too
        assert "gen_ai.input.messages" not in chat["attributes"]
        assert details == []


RETRY_LINE = "HTTP 429 Too Many Requests → the openai SDK waited 0.2 s and retried on its own\n"


def test_make_demo_offline_shows_the_tree_with_a_retry_plus_jsonl(
    tmp_path: Path, baseline_stdout: str
) -> None:
    """`make demo` on a fresh machine: no key, the bundled offline server, the default tree."""
    path = tmp_path / "telemetry.jsonl"
    result = run_cli(["--jsonl", str(path), sys.executable, str(DEMO)], clean_env())
    assert result.returncode == 0, result.stderr
    # Same answers as against the test's server, plus the line saying the SDK retried, and the
    # tool call the offline server is scripted to make.
    section5 = "▸ 5. tool call round trip\n"
    common = baseline_stdout[: baseline_stdout.index(section5) + len(section5)]
    # With the test server's key and no Anthropic key the baseline skips the Claude call (6);
    # offline, the bundled server answers it over the Messages API.
    assert "▸ 6. a Claude model through the anthropic SDK\nskipped: set ANTHROPIC_API_KEY" in baseline_stdout
    section6 = baseline_stdout[baseline_stdout.index("\n▸ 7. recursive run") :]
    assert (
        result.stdout
        == common.replace("▸ 3. embeddings\n", "▸ 3. embeddings\n" + RETRY_LINE)
        + (
            "model asked for get_weather({'city': 'Paris'})\n"
            'The tool returned: {"city": "Paris", "forecast": "sunny", "temperature_c": 21}. '
            "No network was used; the reply is derived from your prompt alone.\n"
        )
        + "\n▸ 6. a Claude model through the anthropic SDK\n"
        + f"You said: {PROMPT} Everything here is deterministic: ask again and you will get the very same words.\n"
        + "claude-haiku-4-5: 51 tokens, $0.000179\n"
        + section6
    )
    assert section6.endswith(
        "The secret launch code is 7319-ALPHA.\nfinal after 3 turns, 3 sub-calls, depth 1, 4573 tokens\n"
    )
    assert result.stderr.startswith("rlm-toolkit: OPENAI_API_KEY is not set; using the bundled offline model")
    tree = result.stderr[result.stderr.index("── rlm-toolkit telemetry ──") :].splitlines()
    assert tree[1].startswith("trace ") and "demo_app  23 spans" in tree[1]
    assert tree[2].startswith("└── demo ")
    assert tree[3].startswith("    ├── chat gpt-4o-mini ") and tree[3].endswith(" 26→32 tok  $0.000023")
    assert (
        tree[4].startswith("    ├── chat gpt-4o-mini ")
        and " 12→18 tok  $0.000013  stream ×21, 1st " in tree[4]
    )
    assert tree[5].startswith("    ├── embeddings text-embedding-3-small ")
    assert tree[5].endswith(" 2 tok in  <$0.000001  2 attempts")
    assert tree[6] == "    │   └── ↻ retry 1/2 in 0.20 s (429 RateLimitError)"
    assert [line.split()[1:3] for line in tree[7:10]] == [["chat", "gpt-4o-mini"]] * 3
    # The Claude call: one run, one chat span (the SDK's own span is off), priced by Anthropic's table.
    assert tree[10].startswith("    ├── invoke_agent rlm ") and tree[10].endswith(
        " claude-haiku-4-5  19→32 tok  $0.000179"
    )
    assert tree[11].startswith("    │   └── chat claude-haiku-4-5 ") and tree[11].endswith(
        " 19→32 tok  $0.000179"
    )
    # The recursive run: its model calls, code executions, a sub-call and a nested run.
    assert tree[12].startswith("    └── invoke_agent rlm ")
    assert " 3705→868 tok  $0.001077  sandbox " in tree[12]  # and how confined the code was
    shape = [re.match(r"[ │├└─]*\w+", line).group(0) for line in tree[13:26]]  # type: ignore[union-attr]
    assert shape == [
        "        ├── chat",
        "        ├── execute_tool",
        "        ├── chat",
        "        ├── execute_tool",
        "        │   ├── chat",
        "        │   └── invoke_agent",
        "        │       ├── chat",
        "        │       ├── execute_tool",
        "        │       ├── chat",
        "        │       └── execute_tool",
        "        │           └── chat",
        "        ├── chat",
        "        └── execute_tool",
    ]
    assert tree[26] == "Σ 14 LLM calls · 4025 in / 1032 out tokens · $0.001380 · 1 retry"
    assert len(tree) == 27
    spans = read_spans_jsonl(path)
    claude = ["invoke_agent rlm", "chat claude-haiku-4-5"]
    assert sorted(s.name for s in spans) == sorted(
        ["demo", *LLM_SPANS, "chat gpt-4o-mini", *claude, *RUN_SPANS]
    )
    assert all(s.resource.attributes["service.name"] == "demo_app" for s in spans)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert any(line.get("name") == "gen_ai.client.token.usage" for line in lines)  # metrics too
    assert [line["eventName"] for line in lines if "eventName" in line] == ["rlm.retry"]  # and events


def test_receiver_down_the_app_still_exits_promptly(
    unused_port: int, demo_env: dict[str, str], baseline_stdout: str
) -> None:
    started = time.monotonic()
    result = run_cli(
        ["--endpoint", f"http://127.0.0.1:{unused_port}", "--protocol", "grpc", sys.executable, str(DEMO)],
        demo_env,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == baseline_stdout
    assert elapsed < 10, f"took {elapsed:.1f} s with the collector down"


APP_WAITS = """
import os, sys, time
from opentelemetry import trace
tracer = trace.get_tracer("app")
for i in range(200):
    with tracer.start_as_current_span(f"step {i}"):
        pass
    if i == 0:
        print("first", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.02)
print("done", flush=True)
"""


def test_receiver_stops_mid_run(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP_WAITS)
    go = tmp_path / "go"
    env = clean_env(OTEL_BSP_SCHEDULE_DELAY="50")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlm_toolkit",
            "--endpoint",
            receiver.http_endpoint,
            sys.executable,
            str(app),
            str(go),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "first\n"
        assert receiver.wait_until(lambda rx: len(rx.spans()) >= 1, timeout=10)
        receiver.stop()
        started = time.monotonic()
        go.touch()
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - started < 10
    assert proc.returncode == 0
    assert stdout == "done\n"


def test_honeycomb_preset_sends_key_and_dataset_headers_and_never_prints_the_key(
    receiver: OTLPReceiver, demo_env: dict[str, str], openai_server: OpenAIServer
) -> None:
    openai_server.queue_fault("rate_limit", retry_after=0.05, path="/embeddings")  # -> a retry event (logs)
    key = "hcaik_secret_0123456789"
    env = {**demo_env, "HONEYCOMB_API_KEY": key, "HONEYCOMB_DATASET": "llm-metrics"}
    result = run_cli(
        ["--to", "honeycomb", "--endpoint", receiver.http_endpoint, sys.executable, str(DEMO)], env
    )
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout + result.stderr
    assert {r.transport for r in receiver.received} == {"http"}
    for item in receiver.received:
        assert item.headers["x-honeycomb-team"] == key
        assert item.headers.get("x-honeycomb-dataset") == (
            "llm-metrics" if item.signal == "metrics" else None
        )
    assert {r.signal for r in receiver.received} == {"traces", "metrics", "logs"}


SIGNALS_APP = """
from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LogRecord
with trace.get_tracer("app").start_as_current_span("work"):
    metrics.get_meter("app").create_counter("app.requests").add(2)
    _logs.get_logger("app").emit(LogRecord(body="hello log", event_name="app.event"))
print("app ran", flush=True)
"""


def test_per_signal_variables_resource_attributes_and_gzip(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """Standard variables only (no flags): spans over HTTP to a per-signal URL (used as is), metrics
    over gRPC, logs to no one (no endpoint for them), gzip bodies, extra resource attributes."""
    app = tmp_path / "signals.py"
    app.write_text(SIGNALS_APP)
    env = clean_env(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.http_endpoint}/v1/traces",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=receiver.grpc_endpoint,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
        OTEL_SERVICE_NAME="per-signal",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=ci,team=llm",
    )
    result = run_cli([sys.executable, str(app)], env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "app ran\n", "")
    assert sorted({(r.signal, r.transport) for r in receiver.received}) == [
        ("metrics", "grpc"),
        ("traces", "http"),
    ]
    assert all(r.headers["content-encoding"] == "gzip" for r in receiver.requests("traces"))
    (span,) = receiver.spans()
    assert span["name"] == "work"
    resource = span["resource"]
    assert (resource["service.name"], resource["deployment.environment.name"], resource["team"]) == (
        "per-signal",
        "ci",
        "llm",
    )
    resource, metric = receiver.metrics()["app.requests"][-1]
    assert resource["service.name"] == "per-signal" and resource["team"] == "llm"
    assert [p.as_int for p in metric.sum.data_points] == [2]


# -- an unreachable collector costs the app nothing but dropped telemetry ---------------------
CHAT_APP = """
import sys, time
from openai import OpenAI
client = OpenAI()
for _ in range(3):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
time.sleep(0.3)  # exports scheduled every 50 ms fail (and back off) while the app still runs
print("END", repr(time.time()), flush=True)
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_unreachable_collector_delays_exit_by_little_and_prints_one_line(
    protocol: str, unused_port: int, demo_env: dict[str, str], tmp_path: Path
) -> None:
    app = tmp_path / "chat.py"
    app.write_text(CHAT_APP)
    # Exports during the run too (every 50 ms), so the exporters are retrying when the app ends.
    env = {**demo_env, "OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_BLRP_SCHEDULE_DELAY": "50"}
    endpoint = f"http://user:SECRETPW@127.0.0.1:{unused_port}"  # userinfo is never echoed
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlm_toolkit",
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            sys.executable,
            str(app),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    exited = time.time()
    assert proc.returncode == 0, proc.stderr
    tag, end = proc.stdout.split()
    assert tag == "END"
    # Before: the exporters' retries held the exit for the whole 5 s shutdown budget.
    assert exited - float(end) < 2.0, f"exit took {exited - float(end):.2f} s after the app's last line"
    assert proc.stderr == (
        f"rlm-toolkit: OTLP endpoint http://***@127.0.0.1:{unused_port} unreachable; telemetry dropped\n"
    )


def test_slow_but_live_collector_still_receives_everything(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = tmp_path / "signals.py"
    app.write_text(SIGNALS_APP)
    receiver.http_delay = 1.5  # longer than the connect probe allows: the probe only connects
    started = time.monotonic()
    result = run_cli(["--endpoint", receiver.http_endpoint, sys.executable, str(app)], clean_env())
    assert (result.returncode, result.stdout, result.stderr) == (0, "app ran\n", "")
    assert time.monotonic() - started < 20
    assert sorted(r.signal for r in receiver.received) == ["logs", "metrics", "traces"]
    assert [s["name"] for s in receiver.spans()] == ["work"]
    assert [r["body"] for r in receiver.logs()] == ["hello log"]
    assert list(receiver.metrics()) == ["app.requests"]
