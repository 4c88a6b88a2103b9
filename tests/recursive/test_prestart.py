"""The sandbox starts while the first root call is in flight, and a run that ends first leaves
nothing behind: no worker, no scratch dir (sync and async; answer, error, budget, cancel, Ctrl-C,
a worker that dies while it starts). With ``keep_sandbox_ready`` each run takes a fresh worker
started ahead of it, never one that ran code before."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.sandbox import SandboxLimits
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, children_of_this_process, make_rlm, repl

#: Where every uid may enter (the system's temporary directory before any test changes it).
_SHARED_TMP = tempfile.gettempdir() if os.stat(tempfile.gettempdir()).st_mode & 0o001 else "/tmp"


@pytest.fixture(autouse=True)
def _private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scratch dirs go to this test's own temporary directory, one the worker's uid may enter
    (as root the sandbox would otherwise use the shared /tmp, out of this test's sight)."""
    root = Path(tempfile.mkdtemp(prefix="rlm-prestart-test-", dir=_SHARED_TMP))
    root.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _scratch_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "rlm-sandbox-*")))


def _run(rlm: Any, mode: str, context: Any = "ctx") -> Any:
    if mode == "sync":
        return rlm.run("q", context=context)
    return asyncio.run(rlm.arun("q", context=context))


def test_scratch_dirs_are_made_where_these_tests_look(server: OpenAIServer, otel: Otel) -> None:
    # Guards the checks below: were scratch dirs made elsewhere, "none left" would prove nothing.
    server.queue_reply(repl("print(1)"))
    seen: list[set[str]] = []

    class Look:
        def on_tool_start(self, tool_name: str, tool_input: Any = None, **kwargs: Any) -> None:
            seen.append(_scratch_dirs())

    server.queue_reply("FINAL(x)")
    make_rlm(server, otel, Look()).run("q", context="ctx")
    assert len(seen[0]) == 1


def _assert_nothing_left() -> None:
    assert children_of_this_process() == []
    assert _scratch_dirs() == set()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_answer_before_any_code_does_not_wait_for_the_worker_and_leaves_none(
    server: OpenAIServer, otel: Otel, mode: str
) -> None:
    # The run ends while its worker is still starting: the start is cut short and released.
    for _ in range(3):
        server.queue_reply("FINAL(42)")
        assert _run(make_rlm(server, otel), mode).answer == "42"
        _assert_nothing_left()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failing_first_call_and_a_budget_stop_leave_nothing(
    server: OpenAIServer, otel: Otel, mode: str
) -> None:
    server.queue_fault("bad_request")
    with pytest.raises(Exception, match="400"):
        _run(make_rlm(server, otel), mode)
    _assert_nothing_left()
    server.queue_fault("slow", delay=3.0)
    result = _run(make_rlm(server, otel, config=RLMConfig(max_seconds=0.3)), mode)
    assert result.status == "timeout"
    _assert_nothing_left()


def test_cancel_and_ctrl_c_during_the_first_call_leave_nothing(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("slow", delay=3.0, times=2)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(make_rlm(server, otel).arun("q", context="ctx"), 0.05))
    _assert_nothing_left()
    timer = threading.Timer(0.05, signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            make_rlm(server, otel).run("q", context="ctx")
    finally:
        timer.cancel()
    _assert_nothing_left()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_worker_that_dies_starting_fails_only_a_run_that_needs_it(
    server: OpenAIServer, otel: Otel, mode: str
) -> None:
    # 80 MB of context cannot load under a 64 MiB address space: the worker dies loading it.
    # The first request has left by then; a run answered without code never needed the worker.
    big = "x" * (80 << 20)
    small = SandboxLimits(memory_bytes=64 << 20)
    server.queue_reply("FINAL(done)")
    rlm = make_rlm(server, otel, config=RLMConfig(sandbox_limits=small))
    assert _run(rlm, mode, big).answer == "done"
    _assert_nothing_left()
    server.queue_reply(repl("print(len(context))"))
    with pytest.raises(RuntimeError, match="memory_bytes"):
        _run(rlm, mode, big)
    assert len(server.requests) == 2  # each run's first request went out before its worker failed
    _assert_nothing_left()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_keep_sandbox_ready_gives_each_run_a_fresh_worker_and_ends_it_on_close(
    server: OpenAIServer, otel: Otel, mode: str
) -> None:
    rlm = make_rlm(server, otel)
    ready = rlm.keep_sandbox_ready()
    assert rlm.keep_sandbox_ready() is ready
    code = "print(('LEFT' + 'OVER') if 'mark' in globals() else ('FR' + 'ESH'))\nmark = 1"
    for _ in range(3):
        server.queue_reply(repl(code))
        server.queue_reply("FINAL(ok)")
        result = _run(rlm, mode)
        assert result.answer == "ok"
        # The run's namespace held no variable of the run before it: never a used worker.
        assert "FRESH" in str(result.transcript) and "LEFTOVER" not in str(result.transcript)
    deadline = time.monotonic() + 30
    while len(children_of_this_process()) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children_of_this_process()) == 1  # the one kept ready for the next run
    ready.close()
    _assert_nothing_left()
    assert rlm.keep_sandbox_ready() is not ready  # keeping again after a close starts anew
    rlm.keep_sandbox_ready().close()
    _assert_nothing_left()
