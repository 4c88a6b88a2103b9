"""Memory stays flat under load: N instrumented chat calls through the in-process mock transport.

Measures after a warm-up (default 10k calls) and again at the end (default 100k): resident set
size, objects tracked by the GC, and (with ``--tracemalloc``, ~3x slower) Python heap bytes
with the top growing allocation sites. A leak of one small object per call shows up as ~90k
more GC objects and several MB; flat means within noise.

    python benchmarks/memory.py                     # ~2 min on the 2-core box
    python benchmarks/memory.py --calls 20000 --warmup 2000 --tracemalloc
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker
import workload


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _sample(trace: bool) -> dict[str, Any]:
    gc.collect()
    out: dict[str, Any] = {"rss_kib": _rss_kib(), "gc_objects": len(gc.get_objects())}
    if trace:
        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=10_000)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--stream", action="store_true", help="streamed chat (10 chunks) instead of plain chat")
    args = ap.parse_args()

    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

    tp, mp, lp = worker.providers()
    OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
    client = workload.sync_client()

    def call() -> None:
        if args.stream:
            workload.stream(client, 10)
        else:
            workload.chat(client)

    if args.tracemalloc:
        tracemalloc.start(10)
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        call()
    first = _sample(args.tracemalloc)
    snap0 = tracemalloc.take_snapshot() if args.tracemalloc else None
    for _ in range(args.calls - args.warmup):
        call()
    last = _sample(args.tracemalloc)
    result: dict[str, Any] = {
        "calls": args.calls,
        "warmup": args.warmup,
        "workload": "stream_10" if args.stream else "chat",
        "seconds": round(time.perf_counter() - t0, 1),
        "after_warmup": first,
        "at_end": last,
        "growth": {k: last[k] - first[k] for k in first},
    }
    if snap0 is not None:
        diff = tracemalloc.take_snapshot().compare_to(snap0, "lineno")
        result["top_growth"] = [str(d) for d in diff[:5]]
    OpenAIInstrumentor().uninstrument()
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
