from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from otlp.receiver import OTLPReceiver
from rlm_toolkit.testing import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo_app.py"
API_KEY = "sk-test-0123456789abcdef"


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any telemetry, OpenAI or Anthropic settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "RLM_", "OPENAI_", "ANTHROPIC_", "HONEYCOMB_")) and k != "PYTHONPATH"
    }
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlm_toolkit", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


@pytest.fixture
def demo_env(openai_server: OpenAIServer) -> dict[str, str]:
    openai_server.reset()
    return clean_env(OPENAI_BASE_URL=openai_server.base_url, OPENAI_API_KEY=API_KEY)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
