"""Measure one instrumentation against the bare SDK and the bare OTel floor, in ONE process.

Rounds are interleaved (sdk, instrumented, floor, sdk, instrumented, floor, ...) so drift on a
shared machine hits every mode alike; each figure is the median over rounds of CPU time
(``time.process_time``) and wall time per call. Prints one JSON document on stdout.

Blocks of one mode are compared with blocks of another ("added" per workload). For the chat
call, a second figure alternates SDK-only and instrumented calls one by one (see
:func:`unwrapped_chat`): it is the like-for-like comparison with the in-situ floor, which is
measured the same way. Block comparisons read 15-30 µs higher on this machine.

The floor is measured twice. *Isolated*: the floor telemetry alone in a tight loop, where the
OTel SDK's code and data stay in the CPU caches. *In situ*: the same telemetry emitted right
after each uninstrumented SDK call (``sdk chat + floor`` minus ``sdk chat``, alternating call by
call), where the SDK's own work has evicted them, exactly as it has for any instrumentation's
code.

Runs in any venv that has ``openai`` and the OTel SDK: ours, or a peer's (see run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind


class _DropSpans(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DropLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def providers() -> tuple[TracerProvider, MeterProvider, LoggerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(_DropSpans()))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(_DropLogs()))
    return tp, mp, lp


def floor_fn(tp: TracerProvider, mp: MeterProvider) -> Callable[[], None]:
    """The least a semconv-complete GenAI instrumentation must do per call, with no wrapper.

    One CLIENT span carrying the attributes a complete chat span carries (request, response,
    usage, server), and the three metric records the conventions ask for (duration, input and
    output token usage) with their attribute sets. Built from plain dicts prepared once, so
    this is the OTel SDK's own cost: what any instrumentation pays before its own logic.
    """
    tracer = tp.get_tracer("floor")
    meter = mp.get_meter("floor")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    start_attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": workload.MODEL,
        "server.address": "127.0.0.1",
        "server.port": 9,
    }
    end_attrs = {
        "gen_ai.response.id": "chatcmpl-bench",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.response.system_fingerprint": "fp_bench",
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 8,
    }
    metric_attrs = {**start_attrs, "gen_ai.response.model": "gpt-4o-mini-2024-07-18"}
    tin = {**metric_attrs, "gen_ai.token.type": "input"}
    tout = {**metric_attrs, "gen_ai.token.type": "output"}

    def once() -> None:
        start = time.perf_counter()
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start_attrs)
        span.set_attributes(end_attrs)
        span.end()
        duration.record(time.perf_counter() - start, metric_attrs)
        tokens.record(21, tin)
        tokens.record(8, tout)

    return once


def _time(fn: Callable[[], None], calls: int) -> tuple[float, float]:
    fn()  # untimed: the first call after (un)instrumenting pays one-off cache warm-up
    gc.collect()
    gc.disable()
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls
    finally:
        gc.enable()


def _time_alternating(a: Callable[[], None], b: Callable[[], None], calls: int) -> float:
    """CPU seconds ``b`` costs more than ``a`` per call, alternating them call by call so both
    run in the same cache state (each right after the other)."""
    a()
    b()
    clock = time.process_time_ns
    spent_a = spent_b = 0
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            t0 = clock()
            a()
            t1 = clock()
            b()
            t2 = clock()
            spent_a += t1 - t0
            spent_b += t2 - t1
    finally:
        gc.enable()
    return (spent_b - spent_a) / calls / 1e9


def unwrapped_chat(client: Any) -> Callable[[], None] | None:
    """The chat call without the instrumentation, while it is instrumented: possible when the
    instrumentation wraps ``Completions.create`` with wrapt (ours, the official one,
    OpenLLMetry), so ``__wrapped__`` is the SDK's own method. None otherwise (OpenInference
    wraps the client's ``request`` instead)."""
    try:
        import wrapt
        from openai.resources.chat.completions import Completions
    except ImportError:
        return None
    attr = vars(Completions).get("create")
    if not isinstance(attr, wrapt.FunctionWrapper):
        return None
    raw = attr.__wrapped__
    while isinstance(raw, wrapt.FunctionWrapper):  # stacked wrappers (instrumented twice)
        raw = raw.__wrapped__
    completions = client.chat.completions

    def call() -> None:
        raw(completions, model=workload.MODEL, messages=workload.MESSAGES)

    return call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instrumentor", required=True, help="module:Class of a BaseInstrumentor")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply call counts (quick runs: 0.2)")
    ap.add_argument("--workloads", default="", help="comma list to run a subset (chat is always run)")
    args = ap.parse_args()

    module, _, cls = args.instrumentor.partition(":")
    instrumentor = getattr(importlib.import_module(module), cls)()
    tp, mp, lp = providers()

    client, aclient = workload.sync_client(), workload.async_client()
    loop = asyncio.new_event_loop()

    def n(k: int) -> int:
        return max(3, int(k * args.scale))

    workloads: dict[str, tuple[Callable[[], None], int]] = {
        "chat": (lambda: workload.chat(client), n(300)),
        "stream_10": (lambda: workload.stream(client, 10), n(100)),
        "stream_100": (lambda: workload.stream(client, 100), n(20)),
        "stream_1000": (lambda: workload.stream(client, 1000), n(6)),
        "async_chat": (lambda: loop.run_until_complete(workload.achat(aclient)), n(300)),
        "embeddings": (lambda: workload.embed(client), n(300)),
    }
    if args.workloads:
        keep = {"chat", *(w for w in args.workloads.split(",") if w)}
        unknown = keep - workloads.keys()
        if unknown:
            sys.exit(f"worker.py: unknown workloads {sorted(unknown)}; choose from {sorted(workloads)}")
        workloads = {k: v for k, v in workloads.items() if k in keep}
    for fn, _ in workloads.values():  # warm up imports and caches in both modes
        fn()
    instrumentor.instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
    for fn, _ in workloads.values():
        fn()
    instrumentor.uninstrument()

    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        w: {"sdk": [], "instrumented": []} for w in workloads
    }
    floor_samples: list[tuple[float, float]] = []
    floor = floor_fn(tp, mp)
    chat_fn, chat_calls = workloads["chat"]

    def chat_then_floor() -> None:
        chat_fn()
        floor()

    in_situ: list[float] = []
    alternating: list[float] = []
    for _ in range(args.rounds):
        for name, (fn, calls) in workloads.items():
            samples[name]["sdk"].append(_time(fn, calls))
        in_situ.append(_time_alternating(chat_fn, chat_then_floor, chat_calls))
        instrumentor.instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
        try:
            for name, (fn, calls) in workloads.items():
                samples[name]["instrumented"].append(_time(fn, calls))
            raw_chat = unwrapped_chat(client)
            if raw_chat is not None:
                alternating.append(_time_alternating(raw_chat, chat_fn, chat_calls))
        finally:
            instrumentor.uninstrument()
        floor_samples.append(_time(floor, n(2000)))

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs) * 1e6

    result: dict[str, Any] = {
        "instrumentor": args.instrumentor,
        "python": sys.version.split()[0],
        "floor_cpu_us": med(floor_samples, 0),
        "floor_in_situ_cpu_us": statistics.median(in_situ) * 1e6,
        # The chat call's added CPU measured like the in-situ floor: SDK-only and instrumented
        # calls alternating one by one (None when the instrumentation cannot be bypassed).
        "chat_added_alternating_cpu_us": statistics.median(alternating) * 1e6 if alternating else None,
        "workloads": {},
    }
    for name, modes in samples.items():
        sdk_cpu, ins_cpu = med(modes["sdk"], 0), med(modes["instrumented"], 0)
        sdk_wall, ins_wall = med(modes["sdk"], 1), med(modes["instrumented"], 1)
        # Paired per-round differences are less noisy than a difference of medians.
        added = statistics.median(
            (i[0] - s[0]) * 1e6 for s, i in zip(modes["sdk"], modes["instrumented"], strict=True)
        )
        result["workloads"][name] = {
            "sdk_cpu_us": sdk_cpu,
            "instrumented_cpu_us": ins_cpu,
            "added_cpu_us": added,
            "sdk_wall_us": sdk_wall,
            "added_wall_us": ins_wall - sdk_wall,
        }

    def added(name: str, mode_round: int) -> float:
        s, i = samples[name]["sdk"][mode_round], samples[name]["instrumented"][mode_round]
        return i[0] - s[0]

    # Per chunk: the slope between the 100- and 1000-chunk streams, paired per round (the
    # per-stream costs cancel; a 900-chunk baseline keeps CPU-time noise below 0.1 µs/chunk).
    result["added_cpu_per_chunk_us"] = (
        statistics.median(
            (added("stream_1000", r) - added("stream_100", r)) / 900 * 1e6 for r in range(args.rounds)
        )
        if {"stream_100", "stream_1000"} <= workloads.keys()
        else None
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
