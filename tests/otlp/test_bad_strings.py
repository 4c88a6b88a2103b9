"""A string UTF-8 cannot encode (a lone surrogate) is replaced; no batch or attribute is lost
and no encoder traceback reaches the app's stderr. Real app under rlm-instrument, real OTLP
receiver, real JSONL file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from otlp.conftest import clean_env, run_cli
from otlp.receiver import OTLPReceiver
from rlm_toolkit.exporters import read_spans_jsonl

APP = """
from opentelemetry import _logs, trace
from opentelemetry._logs import LogRecord
tracer = trace.get_tracer("app")
tracer.start_span("good one").end()
with tracer.start_as_current_span("bad \\ud800 name", attributes={"prompt": "hi \\udcff there", "ok": "fine"}) as span:
    span.add_event("note", {"text": "x\\ud800"})
    _logs.get_logger("app").emit(LogRecord(body="body \\ud800", attributes={"k": "v\\udfff"}, event_name="app.ev"))
tracer.start_span("good two").end()
print("app ran", flush=True)
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_lone_surrogates_are_replaced_not_dropped(
    tmp_path: Path, receiver: OTLPReceiver, protocol: str
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "run.jsonl"
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    result = run_cli(
        ["--endpoint", endpoint, "--protocol", protocol, "--jsonl", str(out), sys.executable, str(app)],
        clean_env(),
    )
    assert (result.returncode, result.stdout) == (0, "app ran\n"), result.stderr
    assert "Traceback" not in result.stderr and "Failed to encode" not in result.stderr
    assert receiver.wait_until(lambda rx: len(rx.spans()) == 3 and len(rx.logs()) == 1)
    by_name = {span["name"]: span for span in receiver.spans()}
    assert set(by_name) == {"good one", "bad \ufffd name", "good two"}
    bad = by_name["bad \ufffd name"]
    assert bad["attributes"] == {"prompt": "hi \ufffd there", "ok": "fine"}
    assert bad["events"] == [("note", {"text": "x\ufffd"})]
    (log,) = receiver.logs()
    assert (log["body"], log["attributes"]) == ("body \ufffd", {"k": "v\ufffd"})
    # The JSONL file keeps the whole batch too, the same strings replaced the same way.
    spans = {span.name: span for span in read_spans_jsonl(out)}
    assert set(spans) == {"good one", "bad \ufffd name", "good two"}
    assert dict(spans["bad \ufffd name"].attributes or {})["prompt"] == "hi \ufffd there"
