"""Instructions added per ``anthropic`` Messages call and per stream event (callgrind), against
the bare SDK with its own tracing on and off, and against the official
``opentelemetry-instrumentation-genai-anthropic`` when it installs (a throwaway venv).

Each (contender, workload) runs in its own process under callgrind with collection switched on
only inside the measured region (a ``functools.reduce`` over the calls). The SDK talks to an
in-process mock transport (canned Messages JSON / SSE bytes): no sockets, so what is measured is
the SDK's own work plus what tracing adds. Spans go to a provider whose exporter drops them.

    python benchmarks/anthropic_calls.py                # ours and the bare SDK
    python benchmarks/anthropic_calls.py --peer         # also the official peer (pip into a temp venv)

Rows (instructions per call; ratios to the bare SDK with its tracing off):
  sdk_off     the SDK, ``open_telemetry=False`` (the floor)
  sdk_on      the SDK tracing itself (its span per call)
  ours_on     instrumented by us, the SDK's tracing on (we gate its span off: one span, ours)
  ours_off    instrumented by us, the SDK's tracing off
  peer_on     the official peer with the SDK's tracing on (two spans per call)

Slow (about 20 s per process idle, two at a time); needs ``valgrind``.

Measured 2026-12-05 (anthropic 2.17, opentelemetry-instrumentation-genai-anthropic 1.3b0), added
instructions per call over ``sdk_off`` (ratio to it):

| row | chat | stream, 100 events | stream, 1000 events | per event |
|---|---|---|---|---|
| sdk_on | +940k (1.35x) | +2499k (1.12x) | +6812k (1.04x) | 4793 |
| ours_on | +806k (1.30x) | +1356k (1.06x) | +2270k (1.01x) | 1015 |
| ours_off | +704k (1.26x) | +1345k (1.06x) | +2335k (1.01x) | 1100 |
| peer_on | +1968k (1.72x) | +21008k (1.99x) | +168053k (1.90x) | 163383 |

With the SDK's tracing on, ours (one span, metrics, events) adds 0.86x the SDK's own tracing per
call and 0.21x per event; the peer on top of the SDK's tracing adds 2.1x / 34x the SDK's own.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORKLOADS = {"chat": 20, "stream_10": 10, "stream_100": 4, "stream_1000": 2}

_REGION = r"""
import functools, json, sys
import anthropic, httpx2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk._logs import LoggerProvider

mode, name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(Drop()))
mp = MeterProvider(metric_readers=[InMemoryMetricReader()]); lp = LoggerProvider()
MESSAGE = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hello there, nice to meet you!"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 21, "output_tokens": 8,
    "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}

def sse(n):
    start = {**MESSAGE, "content": [], "stop_reason": None, "usage": {**MESSAGE["usage"], "output_tokens": 1}}
    ev = [("message_start", {"type": "message_start", "message": start}),
          ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
    ev += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}}) for i in range(n)]
    ev += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
           ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n}}),
           ("message_stop", {"type": "message_stop"})]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in ev).encode()

BODY = json.dumps(MESSAGE).encode()
STREAMS = {}

def handle(request):
    body = json.loads(request.content)
    if body.get("stream"):
        n = body["metadata"]["user_id"]
        data = STREAMS.setdefault(n, sse(int(n)))
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=BODY, headers={"content-type": "application/json"})

option = False if mode in ("sdk_off", "ours_off") else {"tracer_provider": tp}
client = anthropic.Anthropic(api_key="k", base_url="http://bench.local", max_retries=0,
    http_client=httpx2.Client(transport=httpx2.MockTransport(handle)), open_telemetry=option)
if mode.startswith("ours"):
    import rlm_toolkit
    rlm_toolkit.instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
elif mode.startswith("peer"):
    from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
USER = [{"role": "user", "content": "Say hello in one short sentence."}]
if name == "chat":
    fn = lambda: client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=USER)
else:
    n = name.partition("_")[2]
    def fn():
        for _ in client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=USER,
                                        stream=True, metadata={"user_id": n}):
            pass
for _ in range(3):
    fn()
functools.reduce(lambda acc, _: fn(), range(calls), None)
"""


def count(python: str, mode: str, workload: str) -> float:
    calls = WORKLOADS[workload]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "region.py"
        script.write_text(_REGION)
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={tmp}/cg.out",
                python,
                str(script),
                mode,
                workload,
                str(calls),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(match.group(1)) / calls


def peer_python() -> str:
    """A throwaway venv with the official peer and this venv's anthropic (pip from the mirror)."""
    venv = Path(tempfile.gettempdir()) / "rlm-bench-anthropic-peer"
    python = venv / "bin" / "python"
    ready = venv / "ready"
    if not ready.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        # This file is named like the SDK: read the SDK's version without importing it.
        from importlib.metadata import version

        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                f"anthropic=={version('anthropic')}",
                "opentelemetry-sdk",
                "opentelemetry-instrumentation-genai-anthropic",
            ],
            check=True,
        )
        ready.touch()
    return str(python)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", action="store_true", help="also the official peer (installs into a temp venv)")
    ap.add_argument("--workloads", default="chat,stream_100,stream_1000", help="of " + ", ".join(WORKLOADS))
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("anthropic_calls.py: valgrind is not installed (apt-get install valgrind)")
    workloads = [w for w in args.workloads.split(",") if w]
    rows = [("sdk_off", sys.executable), ("sdk_on", sys.executable)]
    rows += [("ours_on", sys.executable), ("ours_off", sys.executable)]
    if args.peer:
        try:
            rows.append(("peer_on", peer_python()))
        except subprocess.CalledProcessError as exc:
            print(f"peer not measured: its install failed ({exc})")
    # Workload-major order: if the run is cut short, every row has its first workloads.
    jobs = {(mode, w): (python, mode, w) for w in workloads for mode, python in rows}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(count, *job) for key, job in jobs.items()}
        results = {}
        for key, future in futures.items():
            results[key] = future.result()
            print(f"# {key[0]} {key[1]}: {results[key]:.0f}", file=sys.stderr, flush=True)
    print("Instructions per anthropic call (callgrind); added = row - sdk_off; ratio = row / sdk_off")
    head = "| row | " + " | ".join(f"{w} (added, ratio)" for w in workloads) + " | per event added |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for mode, _ in rows:
        cells = []
        for w in workloads:
            base, value = results[("sdk_off", w)], results[(mode, w)]
            cells.append(f"{value / 1e3:.0f}k ({(value - base) / 1e3:+.0f}k, {value / base:.2f}x)")
        per_event = "-"
        if {"stream_100", "stream_1000"} <= set(workloads):
            added = {w: results[(mode, w)] - results[("sdk_off", w)] for w in ("stream_100", "stream_1000")}
            per_event = f"{(added['stream_1000'] - added['stream_100']) / 900:.0f}"
        print(f"| {mode} | " + " | ".join(cells) + f" | {per_event} |")


if __name__ == "__main__":
    main()
