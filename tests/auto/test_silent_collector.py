"""A collector that accepts TCP connections but never answers is named at exit, its telemetry
dropped after the bounded probe, and local outputs still written (a real app, a real socket)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

APP = "from opentelemetry import trace\nwith trace.get_tracer('a').start_as_current_span('work'):\n    pass\n"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_silent_collector_is_reported_and_local_outputs_are_kept(tmp_path: Path, protocol: str) -> None:
    out = tmp_path / "run.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RLM_INSTRUMENT"))}
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "rlm_toolkit",
                "--endpoint",
                f"http://127.0.0.1:{port}",
                "--protocol",
                protocol,
                "--jsonl",
                str(out),
                sys.executable,
                "-c",
                APP,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 0
    assert result.stderr == (
        f"rlm-toolkit: OTLP endpoint http://127.0.0.1:{port} accepts connections but does not answer; "
        "telemetry dropped\n"
    )
    assert [span.name for span in read_spans_jsonl(out)] == ["work"]
