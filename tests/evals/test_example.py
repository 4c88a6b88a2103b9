"""examples/eval_needles.py as a new user runs it: 20 offline tasks on the process pool, the
table, 20 task traces linked to one eval span; a rerun resumes and prints the same table."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from .helpers import cli_env

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "eval_needles.py"


def _run(*args: str, cwd: pathlib.Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _table(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "│" in line and "latency" not in line]


@pytest.mark.parametrize(("kind", "extra"), [("niah", ("--chars", "20000")), ("oolong", ())])
def test_the_example_runs_twenty_tasks_then_resumes(
    tmp_path: pathlib.Path, kind: str, extra: tuple[str, ...]
) -> None:
    first = _run("--kind", kind, "--dir", "demo", *extra, cwd=tmp_path)
    assert "ran 20 tasks now, 0 were already done" in first
    assert "100.0% (20 scored)" in first and "final: 20" in first
    assert "20 task traces linked" in first and first.count("eval span ") == 1
    again = _run("--kind", kind, "--dir", "demo", *extra, cwd=tmp_path)
    assert "ran 0 tasks now, 20 were already done" in again
    assert _table(again) == _table(first)
    assert "20 task traces linked" in again and again.count("eval span ") == 2
