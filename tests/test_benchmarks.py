"""The benchmark harness keeps working (a smoke run: shape and sanity of its output, no timing
assertions -- benchmarks report numbers, tests assert behaviour)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_run_py_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--rounds",
            "1",
            "--scale",
            "0.01",
            "--reference",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "| rlm-toolkit |" in proc.stdout
    result = json.loads(out.read_text())["rlm-toolkit"]
    assert set(result["workloads"]) == {
        "chat",
        "stream_10",
        "stream_100",
        "stream_1000",
        "async_chat",
        "embeddings",
    }
    for key in (
        "floor_cpu_us",
        "floor_in_situ_cpu_us",
        "chat_added_alternating_cpu_us",
        "added_cpu_per_chunk_us",
    ):
        assert isinstance(result[key], float) and math.isfinite(result[key]), key
    assert result["floor_cpu_us"] > 0
    reference = json.loads(out.read_text())["reference minimal wrapper"]
    assert set(reference["workloads"]) == {"chat"} and reference["added_cpu_per_chunk_us"] is None
    assert "| reference minimal wrapper |" in proc.stdout


def test_worker_rejects_an_unknown_workload() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "worker.py"),
            "--instrumentor",
            "rlm_toolkit.instrumentation.openai:OpenAIInstrumentor",
            "--workloads",
            "stream_7",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("worker.py: unknown workloads ['stream_7']")


def test_rlm_loop_smoke(tmp_path: Path) -> None:
    out = tmp_path / "loop.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "rlm_loop.py"),
            *("--turns", "3", "--queries", "5", "--rounds", "1", "--context-chars", "100000"),
            *("--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.read_text())
    assert result["iteration"]["turns"] == 3
    assert result["llm_query"]["queries"] == 5
    assert result["context"]["context_chars"] == 100_000
    for section in result.values():
        for value in section.values():
            assert math.isfinite(value)
