"""``offline_if_no_key()`` and ``python -m rlm_toolkit.testing``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest

from rlm_toolkit.testing import OFFLINE_API_KEY, OpenAIServer, _offline, offline_if_no_key


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("RLM_DEMO_TOKEN_DELAY", raising=False)
    monkeypatch.setattr(_offline, "_server", None)
    yield
    if _offline._server is not None:
        _offline._server.stop()


def test_without_key_starts_one_server_and_points_the_sdk_at_it(
    no_key: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLM_DEMO_TOKEN_DELAY", "0.001")
    server = offline_if_no_key()
    assert isinstance(server, OpenAIServer) and server.running
    assert server.token_delay == 0.001
    assert os.environ["OPENAI_BASE_URL"] == server.base_url
    assert os.environ["OPENAI_API_KEY"] == OFFLINE_API_KEY == "sk-offline-demo"
    assert capsys.readouterr().err == (
        "rlm-toolkit: OPENAI_API_KEY is not set; using the bundled offline model server "
        f"at {server.base_url}\n"
    )
    assert offline_if_no_key() is server  # idempotent, and silent the second time
    assert capsys.readouterr().err == ""
    with openai.OpenAI(max_retries=0) as client:  # configured from the environment alone
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert (reply.choices[0].message.content or "").startswith("You said: hi. ")
    assert server.requests[0].headers["authorization"] == "<redacted>"


def test_quiet_and_bad_delay(
    no_key: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLM_DEMO_TOKEN_DELAY", "fast")
    server = offline_if_no_key(quiet=True)
    assert server is not None and server.token_delay == 0.0
    assert capsys.readouterr().err == ""


def test_with_a_key_changes_nothing(
    no_key: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert offline_if_no_key() is None
    assert os.environ["OPENAI_API_KEY"] == "sk-real"
    assert "OPENAI_BASE_URL" not in os.environ
    assert _offline._server is None
    assert capsys.readouterr().err == ""


def _env_without_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}


def test_offline_in_a_fresh_process() -> None:
    code = (
        "from rlm_toolkit.testing import offline_if_no_key\n"
        "import openai\n"
        "offline_if_no_key()\n"
        "r = openai.OpenAI().chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'Write a haiku about coding'}])\n"
        "print(r.choices[0].message.content)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env_without_key(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 3
    (line,) = out.stderr.splitlines()
    assert line.startswith(
        "rlm-toolkit: OPENAI_API_KEY is not set; using the bundled offline model server at http://127.0.0.1:"
    )


def test_cli_bad_flag_exits_2_with_one_usage_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rlm_toolkit.testing", "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "usage: python -m rlm_toolkit.testing [-h] [--host ADDR] [--port N] [--token-delay SECONDS] [--max-requests N]",
        "python -m rlm_toolkit.testing: error: unrecognized arguments: --bogus",
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--port", "99999"], "argument --port: must be 0-65535: '99999'"),
        (["--port=-1"], "argument --port: must be 0-65535: '-1'"),
        (["--port", "abc"], "argument --port: not a port number: 'abc'"),
        (["--token-delay", "inf"], "argument --token-delay: must be a finite number >= 0: 'inf'"),
        (["--token-delay", "nan"], "argument --token-delay: must be a finite number >= 0: 'nan'"),
        (["--token-delay=-0.5"], "argument --token-delay: must be a finite number >= 0: '-0.5'"),
        (["--token-delay", "fast"], "argument --token-delay: not a number: 'fast'"),
    ],
)
def test_cli_bad_values_are_one_usage_error(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlm_toolkit.testing.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(args)  # in process: a bad value must never reach bind() (it would serve on success)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "usage: python -m rlm_toolkit.testing [-h] [--host ADDR] [--port N] [--token-delay SECONDS] [--max-requests N]",
        f"python -m rlm_toolkit.testing: error: {error}",
    ]


def test_cli_port_out_of_range_in_a_real_process_has_no_traceback() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rlm_toolkit.testing", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.splitlines()[1:] == [
        "python -m rlm_toolkit.testing: error: argument --port: must be 0-65535: '99999'"
    ]


@contextlib.contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Let a child start with SIGINT at its default even if this process ignores it.

    A process started as a background job of a non-interactive shell (``pytest ... &`` in a
    script) has SIGINT ignored, and children inherit that: the server would then rightly ignore
    Ctrl-C too. While a Python handler is installed here, exec gives the child the default.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _signal_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return " ".join(
                line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigPnd"))
            )
    except OSError:
        return "(no /proc)"


@pytest.mark.parametrize("parent_ignores_sigint", [False, True], ids=["foreground", "background_job"])
def test_cli_serves_until_interrupted(parent_ignores_sigint: bool) -> None:
    previous = signal.getsignal(signal.SIGINT)
    if parent_ignores_sigint:  # what a CI runner's `make test &` does to this process
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _sigint_not_ignored():
            proc = subprocess.Popen(
                # faulthandler: if it hangs, SIGABRT below dumps every thread's stack.
                [sys.executable, "-X", "faulthandler", "-m", "rlm_toolkit.testing", "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    finally:
        if previous is not None:  # None: a handler installed from C, which Python cannot restore
            signal.signal(signal.SIGINT, previous)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("rlm-toolkit offline OpenAI server: http://127.0.0.1:")
        base_url = line.split()[4]
        assert base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            assert [m.id for m in client.models.list()][:1] == ["gpt-3.5-turbo-instruct"]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            state = _signal_state(proc.pid)
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the server did not stop on SIGINT within 20 s ({state}); its threads:\n{err}")
        assert code == 0, proc.communicate(timeout=10)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
