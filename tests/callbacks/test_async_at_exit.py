"""Async callbacks are owned by their processor (issue #17 item 5): an ``AsyncBaseCallback``
whose ``on_llm_end`` takes 50 ms still arrives when the process exits right after the call --
after ``provider.shutdown()``, at a plain exit, and under ``rlm-instrument --callback``.

Each case is a real process (exit is the point), calling the offline server over real HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_toolkit.testing import OpenAIServer

CALLBACKS = """
import asyncio, os
from rlm_toolkit.callbacks import AsyncBaseCallback

class Slow(AsyncBaseCallback):
    async def on_llm_end(self, response, **kwargs):
        await asyncio.sleep(0.05)
        with open(os.environ["ARRIVED_FILE"], "a") as out:
            out.write("on_llm_end arrived\\n")
"""

CALL = """
import openai, os
client = openai.OpenAI(api_key="sk-test", base_url=os.environ["SERVER_URL"], max_retries=0)
client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
"""

IN_PROCESS = (
    """
import os, sys
from opentelemetry.sdk.trace import TracerProvider
import rlm_toolkit
from slowcb import Slow

provider = TracerProvider()
rlm_toolkit.instrument(tracer_provider=provider, callbacks=[Slow()])
"""
    + CALL
    + """
if sys.argv[1] == "shutdown":
    provider.shutdown()  # the app's own shutdown: waits for the callback, bounded
# "exit": nothing more; the SDK's exit handler shuts the provider down
"""
)


def _env(tmp_path: Path, server: OpenAIServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_", "RLM_INSTRUMENT"))}
    env.update(
        ARRIVED_FILE=str(tmp_path / "arrived"),
        SERVER_URL=server.base_url,
        PYTHONPATH=str(tmp_path),
        RLM_TOOLKIT_STRICT="1",
    )
    return env


@pytest.mark.parametrize("how", ["shutdown", "exit"])
def test_a_slow_async_callback_arrives_at_exit_in_process(tmp_path: Path, how: str) -> None:
    (tmp_path / "slowcb.py").write_text(CALLBACKS)
    with OpenAIServer() as server:
        proc = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, how],
            capture_output=True,
            text=True,
            env=_env(tmp_path, server),
            cwd=tmp_path,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "arrived").read_text() == "on_llm_end arrived\n"


def test_a_slow_async_callback_arrives_at_exit_under_rlm_instrument(tmp_path: Path) -> None:
    (tmp_path / "slowcb.py").write_text(CALLBACKS)
    (tmp_path / "app.py").write_text(CALL)
    with OpenAIServer() as server:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "rlm_toolkit", "--exporter", "none", "--callback", "slowcb:Slow"),
                *(sys.executable, str(tmp_path / "app.py")),
            ],
            capture_output=True,
            text=True,
            env=_env(tmp_path, server),
            cwd=tmp_path,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "arrived").read_text() == "on_llm_end arrived\n"
