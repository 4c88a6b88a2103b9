"""The span of the crash being debugged is not lost: streams open when the process ends.

Real processes under ``rlm-instrument``, real HTTP to the offline server (started by the app),
spans read back from the JSONL file the CLI wrote.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

from .helpers import clean_env, run_with_jsonl

APP = """
import asyncio, sys
import openai
from rlm_toolkit.testing import OpenAIServer

mode = sys.argv[1]
server = OpenAIServer().start()
REQUEST = {"model": "gpt-4o", "messages": [{"role": "user", "content": "tell me a story"}], "stream": True}
if mode == "async":
    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(**REQUEST)
        async for chunk in stream:
            raise RuntimeError("app bug")
    asyncio.run(main())
client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
stream = client.chat.completions.create(**REQUEST)
for chunk in stream:
    if mode == "raise":
        raise RuntimeError("app bug")
    if mode == "exit":
        sys.exit(3)
    break  # "open": left unfinished in a global at a normal exit
"""

CASES = [
    ("raise", 1, "error", "RuntimeError"),
    ("async", 1, "error", "RuntimeError"),  # not the CancelledError of asyncio.run's shutdown
    ("exit", 3, "abandoned", None),
    ("open", 0, "abandoned", None),
]


@pytest.mark.parametrize("stream_usage", [False, True], ids=["plain", "stream_usage"])
@pytest.mark.parametrize(("mode", "status", "reason", "error_type"), CASES, ids=[c[0] for c in CASES])
def test_stream_open_at_exit_ends_once_with_the_reason(
    tmp_path: Path, mode: str, status: int, reason: str, error_type: str | None, stream_usage: bool
) -> None:
    """Also with opt-in stream usage, whose proxies iterate through the usage-hiding path."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "run.jsonl"
    cli = ("--stream-usage",) if stream_usage else ()
    result = run_with_jsonl(app, out, mode, cli=cli)
    assert result.returncode == status, result.stderr
    (span,) = read_spans_jsonl(out)  # exactly once
    attrs = dict(span.attributes or {})
    assert attrs["rlm.stream.end_reason"] == reason
    assert attrs.get("error.type") == error_type
    assert (span.status.status_code.name == "ERROR") is (error_type is not None)


def test_stream_open_when_sigterm_arrives_is_flushed(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        APP.replace("    break  #", "    print('ready', flush=True); __import__('time').sleep(60)  #")
    )
    out = tmp_path / "run.jsonl"
    env = clean_env()
    cmd = [sys.executable, "-m", "rlm_toolkit", "--exporter", "jsonl", "--jsonl", str(out)]
    proc = subprocess.Popen(
        [*cmd, sys.executable, str(app), "open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    (span,) = read_spans_jsonl(out)
    assert dict(span.attributes or {})["rlm.stream.end_reason"] == "abandoned"
