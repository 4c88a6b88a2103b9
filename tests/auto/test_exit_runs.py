"""Recursive runs open when the process ends under ``rlm-instrument``: every open span arrives
(ended as an error) and no sandbox scratch dir is left behind.

Real processes, real HTTP to the offline server (started by the app), spans read back from the
JSONL file the CLI wrote; each app gets its own TMPDIR, so scratch dirs are counted exactly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

from .helpers import clean_env

APP = """
import asyncio, sys, threading, time
from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer

mode = sys.argv[1]
server = OpenAIServer().start()

started = threading.Event()

class Ready:
    def on_tool_start(self, tool_name, tool_input=None, **kwargs):
        server.queue_fault("slow", delay=60, times=8)
        print("ready", flush=True)
        started.set()

rlm = RLM.from_openai("gpt-4o-mini", callbacks=[Ready()], api_key="sk-test", base_url=server.base_url)
CODE = {
    "llm_query": 'print(llm_query("slow"))',
    "batched": 'print(llm_query_batched(["a", "b", "c"]))',
    "nested": 'print(rlm_query("inner", context="some text"))',
}[sys.argv[2]]
server.queue_reply("```repl\\n" + CODE + "\\n```", to="root")
if mode == "sync":
    rlm.run("q", context="ctx")
elif mode == "async":
    asyncio.run(rlm.arun("q", context="ctx"))
elif mode == "thread-exit":
    threading.Thread(target=rlm.run, args=("q",), kwargs={"context": "ctx"}, daemon=True).start()
    started.wait(60)
    time.sleep(0.5)
    sys.exit(3)
"""

STREAM_APP = """
import sys
from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer

server = OpenAIServer().start()
rlm = RLM.from_openai("gpt-4o-mini", api_key="sk-test", base_url=server.base_url)
stream = rlm.stream("tell me a story")
next(stream)
sys.exit(3)
"""


def _start(
    tmp_path: Path, scratch: Path, source: str, *args: str
) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start the app under rlm-instrument with ``scratch`` (a ``scratch_tmp``: a directory the
    sandbox really makes its scratch dirs in, even as root) as its TMPDIR."""
    app = tmp_path / "app.py"
    app.write_text(source)
    out = tmp_path / "run.jsonl"
    env = clean_env()
    env["TMPDIR"] = str(scratch)
    cmd = [sys.executable, "-m", "rlm_toolkit", "--exporter", "jsonl", "--jsonl", str(out)]
    proc = subprocess.Popen(
        [*cmd, sys.executable, str(app), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, out, scratch


@pytest.mark.parametrize("code", ["llm_query", "batched", "nested"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sigterm_mid_run_exports_the_open_spans_and_removes_scratch(
    tmp_path: Path, scratch_tmp: Path, mode: str, code: str
) -> None:
    # Before: only the finished chat spans arrived (their parent missing) and one
    # /tmp/rlm-sandbox-* per run was left behind.
    proc, out, scratch = _start(tmp_path, scratch_tmp, APP, mode, code)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.5)  # the code is running, its sub-calls waiting on the slow server
        assert list(scratch.glob("rlm-sandbox-*")), "the run's scratch dir is not where this test looks"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, stderr
    spans = read_spans_jsonl(out)
    names = [s.name for s in spans]
    assert names.count("execute_tool repl") >= 1
    roots = [s for s in spans if s.name == "invoke_agent rlm" and s.parent is None]
    assert len(roots) == 1
    ids = {s.context.span_id for s in spans if s.context is not None}
    assert all(s.parent is None or s.parent.span_id in ids for s in spans)  # no missing parent
    for span in spans:
        if span.name in ("invoke_agent rlm", "execute_tool repl"):
            assert span.status.status_code.name == "ERROR"
            assert (span.attributes or {}).get("error.type") == "RunAbandoned"
    assert list(scratch.glob("rlm-sandbox-*")) == []


def test_a_run_in_a_thread_open_at_sys_exit_ends_its_spans(tmp_path: Path, scratch_tmp: Path) -> None:
    proc, out, scratch = _start(tmp_path, scratch_tmp, APP, "thread-exit", "llm_query")
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, stderr
    spans = read_spans_jsonl(out)
    (run,) = [s for s in spans if s.name == "invoke_agent rlm"]
    (tool,) = [s for s in spans if s.name == "execute_tool repl"]
    assert (run.attributes or {}).get("error.type") == "RunAbandoned"
    assert tool.status.status_code.name == "ERROR"
    assert list(scratch.glob("rlm-sandbox-*")) == []


def test_an_rlm_stream_open_at_sys_exit_ends_its_run_span(tmp_path: Path, scratch_tmp: Path) -> None:
    # Before: the run span of an RLM.stream() still open at sys.exit(3) was lost.
    proc, out, _ = _start(tmp_path, scratch_tmp, STREAM_APP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    spans = read_spans_jsonl(out)
    (run,) = [s for s in spans if s.name == "invoke_agent rlm"]
    assert (run.attributes or {})["rlm.stream.end_reason"] == "abandoned"
