"""How many of our source files one chat call with one callback walks, and how often the
path moves from one file to another (issue #17's structural measure).

The workload is ``workload.chat`` (the real ``openai`` client over an in-process transport)
with ``rlm_toolkit.instrument(callbacks=[one callback with on_llm_start/on_llm_end])`` and an
in-memory tracer provider. One warm-up call, then one traced call: ``sys.setprofile`` records
every Python function entered and left; only frames whose file is under ``src/rlm_toolkit``
count. A *move* is a change of file between two consecutive recorded events (a call into
another of our files, or a return back to one), so the callback leg's hops through
processors and dispatch count as they happen.

    python benchmarks/call_path.py          # prints files, functions, moves and the file list
    python benchmarks/call_path.py --steps  # ... and the path, one line per stay in a file
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import rlm_toolkit  # noqa: E402
from rlm_toolkit.callbacks import BaseCallback  # noqa: E402

SRC = str(Path(rlm_toolkit.__file__).resolve().parent) + "/"


class One(BaseCallback):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_llm_start(self, prompt: Any, **kwargs: Any) -> None:
        self.seen.append("start")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append("end")


def _file(event: str) -> str:
    return event.split(":", 1)[0]


def trace_one_call() -> tuple[list[str], set[str], int, list[str]]:
    """(files in first-seen order, functions, moves between files, the recorded
    ``file:function:call|return`` events in order) of one traced call."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    callback = One()
    rlm_toolkit.instrument(tracer_provider=provider, callbacks=[callback])
    try:
        client = workload.sync_client()
        workload.chat(client)  # warm-up: one-off imports and caches do not count
        files: list[str] = []
        functions: set[str] = set()
        events: list[str] = []

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event not in ("call", "return"):
                return
            path = frame.f_code.co_filename
            if not path.startswith(SRC):
                return
            rel = path[len(SRC) :]
            if rel not in files:
                files.append(rel)
            functions.add(f"{rel}:{frame.f_code.co_qualname}")
            events.append(f"{rel}:{frame.f_code.co_qualname}:{event}")

        sys.setprofile(profile)
        try:
            workload.chat(client)
        finally:
            sys.setprofile(None)
        moves = sum(1 for a, b in itertools.pairwise(events) if _file(a) != _file(b))
        assert callback.seen == ["start", "end"] * 2, callback.seen
        return files, functions, moves, events
    finally:
        rlm_toolkit.uninstrument()
        provider.shutdown()


def main() -> None:
    files, functions, moves, events = trace_one_call()
    print(f"files {len(files)}  functions {len(functions)}  moves between files {moves}")
    for name in files:
        print(f"  {name}")
    if "--steps" in sys.argv:  # the path itself: one line per stay in a file
        for file, group in itertools.groupby(events, _file):
            print(f"{file}: " + " ".join(e.split(":", 1)[1] for e in group))


if __name__ == "__main__":
    main()
