"""Helpers shared by the evals tests."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any


def comparable(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What must not differ between two runs of the same tasks (not latency, not trace ids)."""
    keys = ("status", "answer", "score", "input_tokens", "output_tokens", "cost", "iterations", "subcalls")
    return {r["id"]: tuple(r.get(k) for k in keys) for r in rows}


def read_lines(path: str | pathlib.Path) -> list[str]:
    p = pathlib.Path(path)
    return p.read_text().splitlines() if p.exists() else []


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a new user's shell: no key, no base URL, no telemetry settings."""
    drop = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RLM_INSTRUMENT_JSONL")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("OTEL_")}
    env.update(extra)
    return env


def cli(*args: str, cwd: pathlib.Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``rlm-eval ARGS`` (the installed console script) in its own process group, as a shell
    starts a foreground job (so ``os.killpg(proc.pid, SIGINT)`` is the terminal's Ctrl-C)."""
    script = pathlib.Path(sys.executable).with_name("rlm-eval")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rlm_toolkit.evals._cli"]
    return subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=cli_env() if env is None else env,
        start_new_session=True,
    )
