"""A first run as a new user meets it: no API key, the terminal tree, a sandbox torn down at once.

Real SDK clients over real HTTP to the offline server; the sandbox is a real worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import rlm_toolkit
from rlm_toolkit import RLM, RLMCredentialsError
from rlm_toolkit.exporters import ConsoleTreeExporter
from rlm_toolkit.sandbox import Sandbox, SandboxLimits
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, children_of_this_process, repl


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("entry", ["run", "arun", "stream", "recursive"])
@pytest.mark.parametrize("build", ["from_openai", "model_only", "base_url_only"])
def test_no_api_key_is_one_clear_error_before_anything_starts(
    no_key: None, otel: Otel, server: OpenAIServer, entry: str, build: str
) -> None:
    # Before: openai.OpenAIError "Missing credentials. Please pass an `api_key`, ..." from
    # deep inside the first run (and the SDK's wording names options RLM does not take).
    providers = {"tracer_provider": otel.tracer_provider, "logger_provider": otel.logger_provider}
    if build == "model_only":
        rlm = RLM(model="gpt-4o-mini", **providers)
    elif build == "base_url_only":
        rlm = RLM.from_openai("gpt-4o-mini", base_url=server.base_url, **providers)
    else:
        rlm = RLM.from_openai("gpt-4o-mini", **providers)
    with pytest.raises(RLMCredentialsError) as caught:
        if entry == "run":
            rlm.run("hi")
        elif entry == "arun":
            asyncio.run(rlm.arun("hi"))
        elif entry == "stream":
            rlm.stream("hi")
        else:
            rlm.run("hi", context="some context")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no OpenAI API key: set OPENAI_API_KEY")
    assert "python -m rlm_toolkit.testing" in message
    assert isinstance(caught.value, RuntimeError)
    assert rlm_toolkit.RLMCredentialsError is RLMCredentialsError
    assert otel.finished() == []  # nothing started: no span, no request, no sandbox
    assert server.requests == []
    assert children_of_this_process() == []


@pytest.mark.parametrize("where", ["option", "OPENAI_API_KEY"])
def test_a_key_from_any_place_the_sdk_reads_is_enough(
    no_key: None, monkeypatch: pytest.MonkeyPatch, server: OpenAIServer, where: str
) -> None:
    options = {"base_url": server.base_url}
    if where == "option":
        options["api_key"] = "sk-given"
    else:
        monkeypatch.setenv(where, "sk-from-env")
    assert RLM.from_openai("gpt-4o-mini", **options).run("hi").answer


def test_an_admin_key_alone_gets_the_clear_error_too(
    no_key: None, monkeypatch: pytest.MonkeyPatch, server: OpenAIServer
) -> None:
    # The SDK's constructor takes OPENAI_ADMIN_KEY, but a chat call then fails with a TypeError.
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin")
    with pytest.raises(RLMCredentialsError):
        RLM.from_openai("gpt-4o-mini", base_url=server.base_url).run("hi")


def test_the_offline_advice_in_the_message_works(no_key: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The message says: run `python -m rlm_toolkit.testing` and point OPENAI_BASE_URL at it.
    server = subprocess.Popen(
        [sys.executable, "-m", "rlm_toolkit.testing", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()  # "rlm-toolkit offline OpenAI server: http://127.0.0.1:N/v1 ..."
        base_url = banner.split(": ", 1)[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "unused")
        result = RLM.from_openai("gpt-4o-mini").run("What is the secret?", context="The secret is 7.")
    finally:
        server.terminate()
        server.wait(10)
    assert result.status == "final"


def test_the_terminal_tree_shows_the_sandbox_level_on_the_run_line(server: OpenAIServer) -> None:
    # Before: rlm.sandbox.level was on the spans but never in the tree.
    out = io.StringIO()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleTreeExporter(out, width=240, color=False)))
    server.queue_reply(repl('FINAL("ok")'), to="root")
    rlm = RLM.from_openai("gpt-4o-mini", api_key="sk-x", base_url=server.base_url, tracer_provider=provider)
    rlm.run("q", context="ctx")
    provider.shutdown()
    text = out.getvalue()
    (run_line,) = [line for line in text.splitlines() if "invoke_agent rlm" in line]
    assert "sandbox " in run_line
    level = run_line.split("sandbox ", 1)[1].split()[0]
    assert level and level != "not" and "rlimits" in level
    tool_lines = [line for line in text.splitlines() if "execute_tool repl" in line]
    assert tool_lines and all("sandbox " not in line for line in tool_lines)  # once, on the run line


def _worker_cwd() -> tuple[int, str]:
    (pid,) = children_of_this_process()
    return pid, os.readlink(f"/proc/{pid}/cwd")  # the worker runs in its scratch dir


def test_sandbox_kill_removes_everything_now_even_while_execute_runs() -> None:
    # Before: no public way; the runtime's exit path called the private sandbox._finalizer().
    sandbox = Sandbox()
    sandbox.start()
    _pid, scratch = _worker_cwd()
    assert os.path.basename(scratch).startswith("rlm-sandbox-")
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.append(sandbox.execute("import time; time.sleep(30)")))
    runner.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    sandbox.kill()
    # At once, on this thread: the worker is gone and so is its scratch dir.
    assert not os.path.exists(scratch)
    assert children_of_this_process() == []
    assert time.monotonic() - t0 < 2
    runner.join(10)
    assert not runner.is_alive()
    sandbox.kill()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.start()


def test_sandbox_close_from_another_thread_still_defers_to_the_executing_one() -> None:
    # The neighbour: close() keeps its contract (the executing thread releases the rest).
    sandbox = Sandbox()
    sandbox.start()
    _, scratch = _worker_cwd()
    done = threading.Event()

    def run() -> None:
        sandbox.execute("import time; time.sleep(30)")
        done.set()

    threading.Thread(target=run).start()
    time.sleep(0.5)
    sandbox.close()
    assert done.wait(10)
    assert not os.path.exists(scratch)


# -- a worker that dies loading a context: the message says what was seen ----------------------
# Before: "the sandbox worker died loading a context of about N MiB (EOF); raise
# SandboxLimits.memory_bytes" whatever killed it.


def test_a_context_over_memory_bytes_advises_raising_it() -> None:
    with (
        Sandbox(limits=SandboxLimits(memory_bytes=64 << 20)) as sandbox,
        pytest.raises(RuntimeError) as caught,
    ):
        sandbox.set_context("x" * (96 << 20))
    message = str(caught.value)
    assert message.startswith("the sandbox worker could not load a context of about 96 MiB: ")
    assert "MemoryError under its memory limit (64 MiB); raise SandboxLimits.memory_bytes" in message


def test_a_worker_killed_from_outside_while_loading_is_not_blamed_on_memory_bytes() -> None:
    with Sandbox() as sandbox:
        (pid,) = children_of_this_process()
        os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer does
        with pytest.raises(RuntimeError) as caught:
            sandbox.set_context("some context")
    message = str(caught.value)
    assert "killed by SIGKILL, not by its own limits" in message
    assert "a larger memory_bytes will not help" in message
    assert "raise SandboxLimits.memory_bytes" not in message


def test_a_worker_that_does_not_finish_loading_in_time_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rlm_toolkit.sandbox._sandbox.START_TIMEOUT_S", 0.5)  # instead of 30 s
    with Sandbox() as sandbox:
        (pid,) = children_of_this_process()
        os.kill(pid, signal.SIGSTOP)  # alive, but it never answers
        try:
            with pytest.raises(RuntimeError) as caught:
                sandbox.set_context("some context")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    message = str(caught.value)
    assert "still loading after 0.5 s" in message
    assert "memory_bytes" not in message
    assert children_of_this_process() == []  # the stopped worker was killed, not left behind
