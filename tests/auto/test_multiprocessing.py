"""Spans of forked multiprocessing workers reach the exporters (real processes, real pool)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

from .helpers import run_with_jsonl

APP = """
import multiprocessing as mp
from opentelemetry import trace
tracer = trace.get_tracer("mp")
def work(i):
    with tracer.start_as_current_span(f"task-{i}"):
        pass
    return i
if __name__ == "__main__":
    mp.set_start_method("fork")
    with tracer.start_as_current_span("parent"):
        pool = mp.Pool(4)
        print(sum(pool.map(work, range(22))), flush=True)
        pool.close()
        pool.join()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_pool_workers_flush_their_spans_when_they_exit(tmp_path: Path) -> None:
    """A pool worker leaves by os._exit (no atexit): its batched spans were lost (1 of 23)."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "run.jsonl"
    result = run_with_jsonl(app, out, timeout=120)
    assert (result.returncode, result.stdout) == (0, "231\n"), result.stderr
    names = sorted(span.name for span in read_spans_jsonl(out))
    assert names == sorted(["parent", *(f"task-{i}" for i in range(22))])
