"""Deterministic companion to run.py: instructions per call, counted by valgrind's callgrind.

CPU time on a shared 2-core machine wobbles by tens of microseconds between rounds, which is the
size of the effect we care about. Instruction counts do not: the same binary and inputs give the
same count whatever else the machine is doing. Each (contender, workload, mode) runs in its own
process under callgrind with collection switched on only inside the measured region (a
``functools.reduce`` over the calls, so imports and set-up are never counted).

    python benchmarks/instructions.py                 # ours
    python benchmarks/instructions.py --peers         # also the peers (venvs from run.py)
    python benchmarks/instructions.py --stream-usage --workloads bare_100,bare_1000
                                                      # ours with RLM_STREAM_USAGE=1

``bare_N`` are streams whose app does not ask for usage (``stream_N`` do): with
``--stream-usage`` the instrumentation asks for it and hides the extra chunk.

Slow (about 30 s per process, two at a time); needs ``valgrind`` (Debian package).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import OURS, PEERS, _peer_python  # noqa: E402

# workload -> calls in the measured region
WORKLOADS = {"chat": 20, "stream_10": 10, "stream_100": 4, "stream_1000": 2, "bare_100": 4, "bare_1000": 2}

_REGION = r"""
import functools, sys
sys.path.insert(0, {here!r})
import workload, worker
mode, name, calls, instrumentor = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tp, mp, lp = worker.providers()
client = workload.sync_client()
if mode == "instrumented":
    import importlib
    module, _, cls = instrumentor.partition(":")
    getattr(importlib.import_module(module), cls)().instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
if mode == "floor":
    fn = worker.floor_fn(tp, mp)
elif name == "chat":
    fn = lambda: workload.chat(client)
else:
    kind, _, n = name.partition("_")
    fn = lambda: workload.stream(client, int(n), usage=kind == "stream")
for _ in range(3):
    fn()
functools.reduce(lambda acc, _: fn(), range(calls), None)
"""


def count(
    python: Path | str, mode: str, workload: str, instrumentor: str, env: dict[str, str] | None = None
) -> float:
    """Instructions per call of ``workload`` in ``mode`` (sdk / instrumented / floor)."""
    calls = WORKLOADS[workload]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "region.py"
        script.write_text(_REGION.format(here=str(HERE)))
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={tmp}/cg.out",
                str(python),
                str(script),
                mode,
                workload,
                str(calls),
                instrumentor,
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(match.group(1)) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", action="store_true")
    ap.add_argument(
        "--workloads",
        default="chat,stream_10,stream_100,stream_1000",
        help="comma list of " + ", ".join(WORKLOADS),
    )
    ap.add_argument("--stream-usage", action="store_true", help="instrument with RLM_STREAM_USAGE=1")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py: valgrind is not installed (apt-get install valgrind)")
    workloads = [w for w in args.workloads.split(",") if w]
    contenders = [(OURS[0], sys.executable, OURS[2])]
    if args.peers:
        contenders += [(name, str(_peer_python(pkg)), ins) for name, pkg, ins in PEERS]

    jobs = {("sdk", w): (sys.executable, "sdk", w, OURS[2]) for w in workloads}
    jobs[("floor", "chat")] = (sys.executable, "floor", "chat", OURS[2])
    env = {k: v for k, v in os.environ.items() if k != "RLM_STREAM_USAGE"}
    instrumented_env = {**env, "RLM_STREAM_USAGE": "1"} if args.stream_usage else env
    for name, python, instrumentor in contenders:
        for w in workloads:
            jobs[(name, w)] = (python, "instrumented", w, instrumentor, instrumented_env)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(count, *job) for key, job in jobs.items()}
        results = {key: f.result() for key, f in futures.items()}

    floor = results[("floor", "chat")]
    print(
        f"Instructions per call (callgrind). Floor (one semconv span + 3 metric records): {floor / 1e3:.0f}k"
    )
    head = (
        "| contender | " + " | ".join(f"{w} added" for w in workloads) + " | chat added/floor | per chunk |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, _, _ in contenders:
        added = {w: results[(name, w)] - results[("sdk", w)] for w in workloads}
        cells = " | ".join(f"{added[w] / 1e3:.0f}k" for w in workloads)
        ratio = f"{added['chat'] / floor:.2f}x" if "chat" in added else "-"
        # The slope between 100 and 1000 chunks: per-stream costs cancel, and over 900 chunks
        # the ±2k instructions a process moves by (hash seed, layout) is ~2 per chunk.
        chunk = " / ".join(
            f"{(added[f'{kind}_1000'] - added[f'{kind}_100']) / 900:.0f}"
            for kind in ("stream", "bare")
            if {f"{kind}_100", f"{kind}_1000"} <= added.keys()
        )
        print(f"| {name} | {cells} | {ratio} | {chunk} |")
    sdk = " ".join(f"{w}={results[('sdk', w)] / 1e6:.2f}M" for w in workloads)
    print(f"SDK alone: {sdk}")


if __name__ == "__main__":
    main()
