"""What the REPL sandbox costs: start-up, a trivial execution's round trip, an llm_query round
trip with a no-op handler, loading a 10M-character context, and the RSS of host and worker.

Reports numbers; asserts nothing (tests assert behaviour). About 15 s on the 2-core box.

    .venv/bin/python benchmarks/sandbox.py
    .venv/bin/python benchmarks/sandbox.py --rounds 500 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from rlm_toolkit.sandbox import Sandbox, SandboxLimits


class NoOp:
    def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
        return ["" for _ in prompts]

    def rlm_query(self, prompt: str, context: Any) -> str:
        return ""


def _rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _p90_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1] * 1000


def bare_python_start(rounds: int) -> list[float]:
    """The floor of any start: spawning ``python -I -S -c pass`` and waiting for it."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return samples


def sandbox_start(rounds: int) -> tuple[list[float], str]:
    samples, level = [], ""
    for _ in range(rounds):
        box = Sandbox()
        start = time.perf_counter()
        box.start()
        samples.append(time.perf_counter() - start)
        level = box.level
        box.close()
    return samples, level


def round_trips(box: Sandbox, code: str, rounds: int, handler: NoOp | None = None) -> list[float]:
    for _ in range(min(rounds, 20)):  # warm-up
        box.execute(code, handler)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = box.execute(code, handler)
        samples.append(time.perf_counter() - start)
        assert result.error is None, result.error
    return samples


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="executions per round-trip figure")
    parser.add_argument("--starts", type=int, default=10, help="sandbox starts to time")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    bare = bare_python_start(args.starts)
    starts, level = sandbox_start(args.starts)
    context = "0123456789" * 1_000_000
    report: dict[str, Any] = {"level": level, "python": sys.version.split()[0]}
    with Sandbox(limits=SandboxLimits(max_queries=1_000_000)) as box:
        trivial = round_trips(box, "pass", args.rounds)
        printed = round_trips(box, "print('x')", args.rounds)
        one_query = round_trips(box, "llm_query('x')", args.rounds, NoOp())
        hundred = round_trips(
            box, "for _ in range(100):\n    llm_query('x')", max(args.rounds // 10, 5), NoOp()
        )
        host_before, worker_before = _rss_mib(), _rss_mib(box._res.worker.pid)  # type: ignore[union-attr]
        loads = []
        for _ in range(5):
            start = time.perf_counter()
            box.set_context(context)
            loads.append(time.perf_counter() - start)
        host_after, worker_after = _rss_mib(), _rss_mib(box._res.worker.pid)  # type: ignore[union-attr]
        touch = round_trips(box, "len(context)", 20)

    report.update(
        {
            "bare_python_start_ms": _median_ms(bare),
            "sandbox_start_ms": _median_ms(starts),
            "trivial_execute_ms": _median_ms(trivial),
            "trivial_execute_p90_ms": _p90_ms(trivial),
            "print_execute_ms": _median_ms(printed),
            "llm_query_execute_ms": _median_ms(one_query),
            "llm_query_each_ms": (_median_ms(hundred) - _median_ms(trivial)) / 100,
            "context_10m_load_ms": _median_ms(loads),
            "len_context_execute_ms": _median_ms(touch),
            "host_rss_mib": [round(host_before, 1), round(host_after, 1)],
            "worker_rss_mib": [round(worker_before, 1), round(worker_after, 1)],
        }
    )
    rows = [
        ("isolation level", level),
        ("`python -I -S -c pass` spawn (floor of any start)", f"{report['bare_python_start_ms']:.1f} ms"),
        ("sandbox start (spawn, imports, confinement, ready)", f"{report['sandbox_start_ms']:.1f} ms"),
        (
            "execute('pass') round trip, median / p90",
            f"{report['trivial_execute_ms'] * 1000:.0f} / {report['trivial_execute_p90_ms'] * 1000:.0f} µs",
        ),
        ("execute(\"print('x')\") round trip", f"{report['print_execute_ms'] * 1000:.0f} µs"),
        ("execute(\"llm_query('x')\"), no-op handler", f"{report['llm_query_execute_ms'] * 1000:.0f} µs"),
        ("each llm_query inside one execution", f"{report['llm_query_each_ms'] * 1000:.0f} µs"),
        ("set_context(10M chars)", f"{report['context_10m_load_ms']:.0f} ms"),
        ("host RSS before / after the context", f"{host_before:.1f} / {host_after:.1f} MiB"),
        ("worker RSS before / after the context", f"{worker_before:.1f} / {worker_after:.1f} MiB"),
    ]
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
