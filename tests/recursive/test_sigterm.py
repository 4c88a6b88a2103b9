"""A plain SIGTERM (no ``rlm-instrument``) in the middle of a recursive run.

Before: the process died at once, the run's ``invoke_agent``/``execute_tool`` spans never
reached the app's exporter and one ``rlm-sandbox-*`` scratch dir per run was left behind.
Real processes, real HTTP to the offline server (started by the app), the app's own
``BatchSpanProcessor`` writing JSONL; each app gets its own TMPDIR so scratch dirs are counted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rlm_toolkit
from rlm_toolkit import RLM
from rlm_toolkit.exporters import read_spans_jsonl
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, repl

APP = """
import asyncio, os, signal, sys, threading, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
import rlm_toolkit
from rlm_toolkit import RLM
from rlm_toolkit.exporters import JSONLSpanExporter
from rlm_toolkit.testing import OpenAIServer

mode, code, out = sys.argv[1], sys.argv[2], sys.argv[3]
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(JSONLSpanExporter(out), schedule_delay_millis=60_000))
server = OpenAIServer().start()

class Ready:
    def on_tool_start(self, tool_name, tool_input=None, **kwargs):
        server.queue_fault("slow", delay=60, times=8)
        print("ready", flush=True)

if mode == "global":
    trace.set_tracer_provider(provider)
    rlm = RLM.from_openai("gpt-4o-mini", callbacks=[Ready()], api_key="sk-test", base_url=server.base_url)
else:
    rlm = RLM.from_openai(
        "gpt-4o-mini", callbacks=[Ready()], api_key="sk-test", base_url=server.base_url,
        tracer_provider=provider,
    )
CODE = {
    "llm_query": 'print(llm_query("slow"))',
    "batched": 'print(llm_query_batched(["a", "b", "c"]))',
    "nested": 'print(rlm_query("inner", context="some text"))',
}[code]
server.queue_reply("```repl\\n" + CODE + "\\n```", to="root")
if mode in ("sync", "global"):
    rlm.run("q", context="ctx")
elif mode == "async":
    asyncio.run(rlm.arun("q", context="ctx"))
elif mode == "app-handler":
    # The app owns SIGTERM and runs the RLM on a worker thread: it calls end_open_runs itself.
    def on_term(signum, frame):
        rlm_toolkit.end_open_runs()
        os._exit(7)
    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=rlm.run, args=("q",), kwargs={"context": "ctx"}, daemon=True).start()
    while True:
        time.sleep(0.1)
"""


def _run_and_terminate(tmp_path: Path, scratch: Path, mode: str, code: str) -> tuple[int, str, Path, Path]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "spans.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RLM_INSTRUMENT"))}
    env["TMPDIR"] = str(scratch)
    proc = subprocess.Popen(
        [sys.executable, str(app), mode, code, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr
        time.sleep(0.5)  # the code is running, its sub-calls waiting on the slow server
        assert list(scratch.glob("rlm-sandbox-*")), "the run's scratch dir is not where this test looks"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, stderr, out, scratch


def _assert_nothing_lost(out: Path, scratch: Path) -> None:
    spans = read_spans_jsonl(out)
    assert [s.name for s in spans].count("execute_tool repl") >= 1
    roots = [s for s in spans if s.name == "invoke_agent rlm" and s.parent is None]
    assert len(roots) == 1
    ids = {s.context.span_id for s in spans if s.context is not None}
    assert all(s.parent is None or s.parent.span_id in ids for s in spans)  # no missing parent
    for span in spans:
        if span.name in ("invoke_agent rlm", "execute_tool repl"):
            assert span.status.status_code.name == "ERROR"
            assert (span.attributes or {}).get("error.type") == "RunAbandoned"
    assert list(scratch.glob("rlm-sandbox-*")) == []


@pytest.mark.parametrize("code", ["llm_query", "batched", "nested"])
@pytest.mark.parametrize("mode", ["sync", "async", "global"])
def test_plain_sigterm_mid_run_exports_the_open_spans_and_removes_scratch(
    tmp_path: Path, scratch_tmp: Path, mode: str, code: str
) -> None:
    status, stderr, out, scratch = _run_and_terminate(tmp_path, scratch_tmp, mode, code)
    assert status == -signal.SIGTERM, stderr  # it still dies of the signal, as before
    _assert_nothing_lost(out, scratch)


def test_an_app_with_its_own_handler_calls_end_open_runs(tmp_path: Path, scratch_tmp: Path) -> None:
    status, stderr, out, scratch = _run_and_terminate(tmp_path, scratch_tmp, "app-handler", "llm_query")
    assert status == 7, stderr  # the app's handler ran, not ours
    _assert_nothing_lost(out, scratch)


@pytest.fixture
def sigterm_default() -> Iterator[None]:
    """SIGTERM at its default for the test (another suite's ``ray.init`` leaves a handler)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Disposition:
    """Records SIGTERM's disposition while the run's code executes."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_tool_start(self, tool_name: str, tool_input: Any = None, **kwargs: Any) -> None:
        self.seen.append(signal.getsignal(signal.SIGTERM))


def _rlm(server: OpenAIServer, probe: _Disposition) -> RLM:
    server.queue_reply(repl('FINAL("ok")'), to="root")
    return RLM.from_openai("gpt-4o-mini", callbacks=[probe], api_key=API_KEY, base_url=server.base_url)


def test_the_handler_is_there_only_during_a_main_thread_run(
    server: OpenAIServer, sigterm_default: None
) -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    probe = _Disposition()
    assert _rlm(server, probe).run("q", context="ctx").answer == "ok"
    (during,) = probe.seen
    assert callable(during) and during is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the run


def test_an_apps_handler_is_never_replaced(server: OpenAIServer, sigterm_default: None) -> None:
    def mine(signum: int, frame: Any) -> None:
        raise AssertionError("not delivered in this test")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        probe = _Disposition()
        _rlm(server, probe).run("q", context="ctx")
        assert probe.seen == [mine]
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_run_on_another_thread_installs_nothing(server: OpenAIServer, sigterm_default: None) -> None:
    probe = _Disposition()
    rlm = _rlm(server, probe)
    worker = threading.Thread(target=rlm.run, args=("q",), kwargs={"context": "ctx"})
    worker.start()
    worker.join(60)
    assert probe.seen == [signal.SIG_DFL]


def test_end_open_runs_with_nothing_open_is_harmless() -> None:
    rlm_toolkit.end_open_runs()
    rlm_toolkit.end_open_runs(timeout=0)


def _disposition_in_child(base_url: str) -> str:
    reply = repl('FINAL("ok")')
    probe = _Disposition()
    rlm = RLM.from_openai("gpt-4o-mini", callbacks=[probe], api_key=API_KEY, base_url=base_url)
    import urllib.request

    request = urllib.request.Request(
        base_url.removesuffix("/v1") + "/_rlm/replies",
        data=json.dumps({"text": reply, "to": "root"}).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    rlm.run("q", context="ctx")
    return repr(probe.seen)


def test_a_multiprocessing_worker_is_left_at_the_default(server: OpenAIServer) -> None:
    # Pool.terminate() SIGTERMs its workers; one that flushes first lets the pool start
    # replacements it never signals (rlm-instrument resets these workers to the default too).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seen = pool.apply(_disposition_in_child, (server.base_url,))
    assert seen == repr([signal.SIG_DFL])
