"""Cancel, Ctrl-C (SIGINT) and max_seconds stop every wait at once: sync, async, batched, nested.

The slow fault makes the server wait ``SLOW`` seconds before answering; each test asserts the
run returned well before that (before this fix it returned only after it: 12-19 s).
"""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, children_of_this_process, make_rlm, repl

SLOW = 8.0
PROMPTLY = 4.0  # half of SLOW: generous for a loaded 2-core machine, far from the old 12 s


class SlowAfterCodeStarts:
    """Makes the next ``times`` requests slow once the first code block starts (its sub-calls)."""

    def __init__(self, server: OpenAIServer, times: int = 1) -> None:
        self.server, self.times, self.armed = server, times, True

    def on_tool_start(self, tool_name: str, tool_input: Any = None, **kwargs: Any) -> None:
        if self.armed:
            self.armed = False
            self.server.queue_fault("slow", delay=SLOW, times=self.times)


@pytest.fixture(autouse=True)
def _private_tmp(scratch_tmp: Path) -> None:
    """Sandbox scratch dirs go to this test's own directory (others' runs share /tmp)."""


def _scratch_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "rlm-sandbox-*")))


CODES = {
    "llm_query": 'print(llm_query("slow"))',
    "batched": 'print(llm_query_batched(["a", "b", "c", "d"]))',
    "nested": 'print(rlm_query("inner", context="some text"))',
}


@pytest.mark.parametrize("kind", sorted(CODES))
async def test_cancelling_arun_stops_subcalls_and_nested_runs_at_once(
    server: OpenAIServer, otel: Otel, kind: str
) -> None:
    server.queue_reply(repl(CODES[kind]))
    rlm = make_rlm(server, otel, SlowAfterCodeStarts(server, times=4))
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(rlm.arun("q", context="ctx"), 1.0)
    assert time.monotonic() - started < PROMPTLY
    requests = len(server.requests)
    await asyncio.sleep(0.5)
    assert len(server.requests) == requests  # a cancelled nested run makes no more calls
    assert children_of_this_process() == []
    assert _scratch_dirs() == set()
    (run,) = [s for s in otel.finished() if s.name == "invoke_agent rlm" and s.parent is None]
    assert run.status.status_code.name == "ERROR"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_max_seconds_bounds_a_hung_root_call(server: OpenAIServer, otel: Otel, mode: str) -> None:
    # Before: max_seconds=2 with a 10 s root call returned after 10.1 s.
    server.queue_fault("slow", delay=SLOW)
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=1.0))
    started = time.monotonic()
    result = rlm.run("q", context="ctx") if mode == "sync" else asyncio.run(rlm.arun("q", context="ctx"))
    assert time.monotonic() - started < 1.0 + 2.0
    assert result.status == "timeout"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_max_seconds_bounds_a_subcall_and_the_code_waiting_on_it(
    server: OpenAIServer, otel: Otel, mode: str
) -> None:
    server.queue_reply(repl('x = llm_query("slow")\nwhile True:\n    pass'))
    rlm = make_rlm(server, otel, SlowAfterCodeStarts(server), config=RLMConfig(max_seconds=1.5))
    started = time.monotonic()
    result = rlm.run("q", context="ctx") if mode == "sync" else asyncio.run(rlm.arun("q", context="ctx"))
    assert time.monotonic() - started < 1.5 + 2.0
    assert result.status == "timeout"
    assert children_of_this_process() == []


def test_each_execution_gets_only_the_time_left(server: OpenAIServer, otel: Otel) -> None:
    # Before: the wall limit was fixed when the sandbox started, so two executions of 1.2 s
    # under max_seconds=1.5 took 2.4 s; the second now gets the 0.3 s left.
    spin = "import time\nend = time.monotonic() + 1.2\nwhile time.monotonic() < end:\n    pass\nprint('ok')"
    server.queue_reply(repl(spin))
    server.queue_reply(repl(spin))
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=1.5))
    started = time.monotonic()
    result = rlm.run("q", context="ctx")
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert elapsed < 2.2


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", sorted(CODES))
def test_ctrl_c_stops_the_run_at_once(server: OpenAIServer, otel: Otel, kind: str, mode: str) -> None:
    # SIGINT as the terminal sends it, delivered to the main thread while it waits: a sync run
    # raises KeyboardInterrupt; asyncio.run() turns it into cancelling arun (the cancel path).
    server.queue_reply(repl(CODES[kind]))
    rlm = make_rlm(server, otel, SlowAfterCodeStarts(server, times=4))
    timer = threading.Timer(1.0, signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            if mode == "sync":
                rlm.run("q", context="ctx")
            else:
                asyncio.run(rlm.arun("q", context="ctx"))
    finally:
        timer.cancel()
    assert time.monotonic() - started < PROMPTLY
    assert children_of_this_process() == []
    assert _scratch_dirs() == set()
