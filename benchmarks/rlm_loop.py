"""Our own overhead in a recursive run, beyond the model's HTTP calls and the sandbox's work.

Real parts: the ``openai`` client over HTTP to the offline server on 127.0.0.1, a real sandbox
worker, the instrumentation and an SDK tracer provider with an in-memory exporter. Timers wrap
the chat call the runtime makes (``runtime._rlm.complete``: the SDK call, instrumented, over
HTTP) and ``Sandbox.execute``; what is left of the run's wall time is the loop's own work
(prompt building, reply parsing, spans, budget, result).

* ``iteration``: per root turn of a run of N turns, each ``print(i)`` in a ```repl block:
  (run time - chat calls - executions - sandbox start/close) / N.
* ``llm_query``: per sub-call of one execution that makes N sequential ``llm_query`` calls:
  (execution time - chat calls inside it) / N: the pipe round trip sandbox -> host -> sandbox,
  the handler, the budget and the sub-call's bookkeeping (the instrumented span of the call is
  inside the timed chat call).
* ``context``: host memory for a run over a 10M-character context (``--context-chars``): the
  tracemalloc peak during the run, above the context string itself.

    python benchmarks/rlm_loop.py                 # ~15 s
    python benchmarks/rlm_loop.py --turns 50 --queries 500 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rlm_toolkit import RLM, RLMConfig
from rlm_toolkit.runtime import _rlm
from rlm_toolkit.sandbox import Sandbox, SandboxLimits
from rlm_toolkit.testing import OpenAIServer, make_haystack


class Timed:
    """Wraps a function and sums the wall time spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.total = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.total += time.perf_counter() - start
            self.calls += 1

    def reset(self) -> None:
        self.total, self.calls = 0.0, 0


def _repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def make_rlm(server: OpenAIServer, provider: TracerProvider, **config: Any) -> RLM:
    return RLM.from_openai(
        "gpt-4o-mini",
        api_key="sk-bench",
        base_url=server.base_url,
        tracer_provider=provider,
        config=RLMConfig(**config),
    )


def bench_iterations(
    server: OpenAIServer, provider: TracerProvider, turns: int, rounds: int
) -> dict[str, Any]:
    chat, execute, start, close = (
        Timed(_rlm.complete),
        Timed(Sandbox.execute),
        Timed(Sandbox.start),
        Timed(Sandbox.close),
    )
    originals = (_rlm.complete, Sandbox.execute, Sandbox.start, Sandbox.close)
    _rlm.complete = chat  # type: ignore[assignment]
    Sandbox.execute = lambda self, *a, **k: execute(self, *a, **k)  # type: ignore[method-assign]
    Sandbox.start = lambda self: start(self)  # type: ignore[method-assign]
    Sandbox.close = lambda self: close(self)  # type: ignore[method-assign]
    per_turn: list[float] = []
    try:
        rlm = make_rlm(server, provider, max_iterations=turns)
        for _ in range(rounds + 1):  # the first round warms up
            for i in range(turns - 1):
                server.queue_reply(_repl(f"print({i})"))
            server.queue_reply(_repl("FINAL('done')"))
            for t in (chat, execute, start, close):
                t.reset()
            began = time.perf_counter()
            result = rlm.run("bench", context="x" * 1000)
            wall = time.perf_counter() - began
            assert result.status == "final" and result.iterations == turns, result
            ours = wall - chat.total - execute.total - start.total - close.total
            per_turn.append(ours / turns)
    finally:
        _rlm.complete, Sandbox.execute, Sandbox.start, Sandbox.close = originals  # type: ignore[method-assign]
    per_turn = per_turn[1:]
    return {
        "turns": turns,
        "overhead_per_turn_us": round(statistics.median(per_turn) * 1e6, 1),
        "overhead_per_turn_us_min": round(min(per_turn) * 1e6, 1),
        "chat_call_ms": round(chat.total / max(chat.calls, 1) * 1e3, 3),
        "execute_ms": round(execute.total / max(execute.calls, 1) * 1e3, 3),
        "sandbox_start_ms": round(start.total * 1e3, 1),
    }


def bench_llm_query(
    server: OpenAIServer, provider: TracerProvider, queries: int, rounds: int
) -> dict[str, Any]:
    per_query: list[float] = []
    exec_times: list[float] = []
    chat = Timed(_rlm.complete)
    original, original_execute = _rlm.complete, Sandbox.execute

    def execute(self: Sandbox, code: str, handler: Any = None) -> Any:
        chat.reset()
        began = time.perf_counter()
        try:
            return original_execute(self, code, handler)
        finally:
            elapsed = time.perf_counter() - began
            per_query.append((elapsed - chat.total) / queries)
            exec_times.append(elapsed)

    _rlm.complete = chat  # type: ignore[assignment]
    Sandbox.execute = execute  # type: ignore[method-assign]
    try:
        limits = SandboxLimits(max_queries=queries)
        # One turn: its sub-calls would take any further queued reply (the queue is FIFO).
        rlm = make_rlm(server, provider, max_subcalls=None, max_iterations=1, sandbox_limits=limits)
        for _ in range(rounds + 1):
            server.queue_reply(_repl(f"for i in range({queries}):\n    llm_query('hi')"))
            result = rlm.run("bench", context="x")
            assert result.subcalls == queries, (result.status, result.subcalls, result.transcript[-1])
    finally:
        _rlm.complete, Sandbox.execute = original, original_execute  # type: ignore[method-assign]
    per_query = per_query[1:]
    return {
        "queries": queries,
        "overhead_per_llm_query_us": round(statistics.median(per_query) * 1e6, 1),
        "overhead_per_llm_query_us_min": round(min(per_query) * 1e6, 1),
        "execution_ms": round(statistics.median(exec_times[1:]) * 1e3, 1),
    }


def bench_context_memory(server: OpenAIServer, provider: TracerProvider, chars: int) -> dict[str, Any]:
    context = make_haystack(chars)
    rlm = make_rlm(server, provider)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    began = time.perf_counter()
    result = rlm.run("What is the secret launch code?", context=context)
    wall = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert result.status == "final", result
    return {
        "context_chars": len(context),
        "host_peak_above_context_mib": round(peak / 2**20, 1),
        "run_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--context-chars", type=int, default=10_000_000)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with OpenAIServer() as server:
        out = {
            "iteration": bench_iterations(server, provider, args.turns, args.rounds),
            "llm_query": bench_llm_query(server, provider, args.queries, args.rounds),
            "context": bench_context_memory(server, provider, args.context_chars),
        }
    provider.shutdown()
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
