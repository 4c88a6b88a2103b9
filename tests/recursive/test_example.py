"""``examples/recursive_run.py`` as a user runs it: alone (its own trace tree) and under
``rlm-instrument --exporter jsonl`` (the spans go to the file; before, it brought its own
tracer provider and the file had no span of the run). Real processes, offline model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rlm_toolkit.exporters import read_spans_jsonl

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recursive_run.py"


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "RLM_INSTRUMENT", "OPENAI_"))  # no key: the offline model plays
    }
    env["RLM_EXAMPLE_CHARS"] = "200000"
    return env


def test_the_example_alone_prints_its_tree() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "answer: " in done.stdout and "status=final" in done.stdout
    run_line = next(line for line in done.stderr.splitlines() if "invoke_agent rlm" in line)
    assert "sandbox " in run_line


def test_the_example_under_rlm_instrument_sends_its_spans_to_the_configured_exporter(tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    command = [sys.executable, "-m", "rlm_toolkit", "--exporter", "jsonl", "--jsonl", str(out)]
    done = subprocess.run(
        [*command, sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "status=final" in done.stdout
    spans = read_spans_jsonl(out)
    names = [s.name for s in spans]
    assert names.count("invoke_agent rlm") == 2  # the root run and its nested rlm_query run
    assert names.count("execute_tool repl") >= 2
    assert sum(name.startswith("chat ") for name in names) >= 4
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1 and roots[0].name == "invoke_agent rlm"
    assert "invoke_agent rlm" not in done.stderr  # no tree of the example's own beside the file
