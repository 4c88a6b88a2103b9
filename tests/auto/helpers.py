"""Running an app as a user would: ``rlm-instrument --exporter jsonl`` in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env() -> dict[str, str]:
    """This process's environment without OTel or rlm-instrument settings of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RLM_INSTRUMENT"))}


def run_with_jsonl(
    app: Path, out: Path, *app_args: str, cli: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``rlm-instrument --exporter jsonl --jsonl OUT [cli...] python APP [app_args...]``."""
    env = clean_env()
    env["PYTHONPATH"] = ""
    command = [sys.executable, "-m", "rlm_toolkit", "--exporter", "jsonl", "--jsonl", str(out), *cli]
    return subprocess.run(
        [*command, sys.executable, str(app), *app_args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
