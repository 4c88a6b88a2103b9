"""A backend that takes traces but rejects metrics and logs (Arize Phoenix answers 405 over
HTTP and UNIMPLEMENTED over gRPC): the exit report names each dropped signal, once (issue #11)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from otlp.conftest import DEMO, run_cli
from otlp.receiver import OTLPReceiver


@pytest.fixture
def traces_only() -> Iterator[OTLPReceiver]:
    with OTLPReceiver(reject=("metrics", "logs")) as rx:
        yield rx


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_each_rejected_signal_is_named_once(
    protocol: str, traces_only: OTLPReceiver, demo_env: dict[str, str]
) -> None:
    endpoint = traces_only.grpc_endpoint if protocol == "grpc" else traces_only.http_endpoint
    # Content capture on events, so the demo has log records to send too.
    args = ["--endpoint", endpoint, "--protocol", protocol, "--capture-content", "span_and_event"]
    result = run_cli([*args, sys.executable, str(DEMO)], demo_env)
    assert result.returncode == 0, result.stderr
    assert traces_only.spans()  # traces went through
    assert not traces_only.requests("metrics") and not traces_only.requests("logs")
    ours = [line for line in result.stderr.splitlines() if line.startswith("rlm-toolkit: ")]
    assert sorted(ours) == [
        f"rlm-toolkit: OTLP endpoint {endpoint} did not accept {signal}; they were dropped"
        for signal in ("log records", "metrics")
    ]
    assert "unreachable" not in result.stderr  # it is reachable; it said no
