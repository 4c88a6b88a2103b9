"""The needle workload of issue #24: our recursive run against a bare floor, interleaved.

One run: a needle in a context of 100k / 1M / 10M characters; the scripted offline model
(``rlm_toolkit.testing.OpenAIServer`` on 127.0.0.1) answers the first turn with one ```repl
block that finds the needle and makes one ``llm_query``, then answers ``FINAL(...)``. The bare
floor makes the same three HTTP calls with the same ``openai`` client and runs the code with
plain ``exec`` (no isolation). Rounds are interleaved (ours, floor, ours, ...); medians.

Two rows of ours: a plain ``RLM`` (each run starts its worker while its first model call is in
flight) and one with ``RLM.keep_sandbox_ready()`` (a fresh worker started ahead of each run).
Also: when the first model request leaves at 10M (ms from ``run()``), and ``import rlm_toolkit``
+ ``RLM.from_openai(...)`` in a fresh process (median of fresh processes). The load average is
printed: on a busy machine the whole-run medians mostly measure the worker's start.

The peer runtimes on the same workload: ``benchmarks/rlm_peers.py``.

    python benchmarks/rlm_needle.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

import openai

from rlm_toolkit import RLM
from rlm_toolkit.runtime import _rlm
from rlm_toolkit.testing import OpenAIServer

NEEDLE = "The magic number is 7319."
CODE = (
    "i = context.find('magic number')\n"
    "hit = context[i - 10 : i + 40]\n"
    "print(llm_query('Extract the number: ' + hit))"
)
SIZES = (100_000, 1_000_000, 10_000_000)
IMPORT = (
    "import time; t = time.perf_counter(); import rlm_toolkit; "
    "rlm_toolkit.RLM.from_openai('gpt-4o-mini', api_key='sk-bench', base_url='http://127.0.0.1:9/v1'); "
    "print(time.perf_counter() - t)"
)


def haystack(chars: int) -> str:
    filler = "lorem ipsum dolor sit amet " * (chars // 27 + 1)
    half = chars // 2
    return filler[:half] + NEEDLE + filler[: chars - half - len(NEEDLE)]


def script(server: OpenAIServer) -> None:
    server.queue_reply(f"```repl\n{CODE}\n```")
    server.queue_reply("7319")
    server.queue_reply("FINAL(7319)")


def ours(server: OpenAIServer, rlm: RLM, context: str) -> float:
    script(server)
    began = time.perf_counter()
    result = rlm.run("What is the magic number?", context=context)
    took = time.perf_counter() - began
    assert result.answer == "7319", result
    return took


def floor(server: OpenAIServer, client: openai.OpenAI, context: str) -> float:
    script(server)
    began = time.perf_counter()
    messages: list[Any] = [{"role": "user", "content": "What is the magic number?"}]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content
    code = str(reply).split("```repl\n")[1].split("\n```")[0]

    def llm_query(prompt: str) -> str:
        out = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return str(out.choices[0].message.content)

    exec(code, {"context": context, "llm_query": llm_query, "print": lambda *a: None})
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content
    took = time.perf_counter() - began
    assert answer == "FINAL(7319)", answer
    return took


def first_request(server: OpenAIServer, rlm: RLM, context: str) -> float:
    """Seconds from ``run()`` to the start of the first model call."""
    seen: list[float] = []
    original = _rlm.complete

    def timed(*args: Any, **kwargs: Any) -> Any:
        if not seen:
            seen.append(time.perf_counter())
        return original(*args, **kwargs)

    _rlm.complete = timed  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        ours(server, rlm, context)
    finally:
        _rlm.complete = original  # type: ignore[assignment]
    return seen[0] - began


def import_construct(rounds: int) -> float:
    times = [
        float(
            subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True).stdout
        )
        for _ in range(rounds)
    ]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with OpenAIServer() as server:
        rlm = RLM.from_openai("gpt-4o-mini", api_key="sk-bench", base_url=server.base_url)
        warm = RLM.from_openai("gpt-4o-mini", api_key="sk-bench", base_url=server.base_url)
        client = openai.OpenAI(api_key="sk-bench", base_url=server.base_url)
        big = haystack(SIZES[-1])
        # The plain RLM first, then the kept-ready one: a worker starting in the background for
        # the next run would otherwise compete with the plain runs for the two cores.
        times: dict[str, dict[int, float]] = {}
        firsts: dict[str, float] = {}
        for name, subject in (("plain", rlm), ("kept", warm)):
            kept = None
            if name == "kept":
                ready = getattr(warm, "keep_sandbox_ready", None)  # absent before this feature
                kept = ready() if ready is not None else None
            for chars in SIZES:
                context = haystack(chars)
                ours(server, subject, context), floor(server, client, context)  # warm-up
                a: list[float] = []
                b: list[float] = []
                for _ in range(args.rounds):
                    a.append(ours(server, subject, context))
                    b.append(floor(server, client, context))
                times.setdefault(name, {})[chars] = statistics.median(a)
                times.setdefault("floor " + name, {})[chars] = statistics.median(b)
            firsts[name] = statistics.median(first_request(server, subject, big) for _ in range(args.rounds))
            if kept is not None:
                kept.close()
        rows = [
            (c, times["plain"][c], times["kept"][c], min(times["floor plain"][c], times["floor kept"][c]))
            for c in SIZES
        ]
        first, first_warm = firsts["plain"], firsts["kept"]
    imported = import_construct(args.rounds)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"needle workload, {args.rounds} interleaved rounds, medians, load average {load}")
    print(
        f"{'context':>10} {'rlm-toolkit ms':>15} {'kept ready ms':>14} {'bare floor ms':>14} {'ratios':>11}"
    )
    for chars, mine, kept_ms, bare in rows:
        print(
            f"{chars:>10,} {mine * 1e3:>15.1f} {kept_ms * 1e3:>14.1f} {bare * 1e3:>14.1f}"
            f" {mine / bare:>5.1f} {kept_ms / bare:>5.1f}"
        )
    print(f"first model request at 10M: {first * 1e3:.1f} ms after run() ({first_warm * 1e3:.1f} kept ready)")
    print(f"import rlm_toolkit + RLM.from_openai (fresh process): {imported * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
