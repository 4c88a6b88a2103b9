"""Hostile code from the model, through a whole run: each attempt is contained, goes back to the
model as an error, shows on its ``execute_tool`` span, and the run goes on to its answer. The
sandbox's own corpus (tests/sandbox) proves the layers; this proves the runtime's handling."""

from __future__ import annotations

import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.sandbox import SandboxLimits
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Otel, Recorder, children_of_this_process, make_rlm

#: name -> (code, sub-call replies it takes from the scripted queue, whether it ends in an error)
ATTEMPTS = {
    "import os": ("import os\nprint(os.environ)", 0, True),
    "subprocess": ("import subprocess\nsubprocess.run(['id'])", 0, True),
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', 80))", 0, True),
    "read the key": ("print(__import__('os').environ['OPENAI_API_KEY'])", 0, True),
    # Past the import allow-list, the worker's environment is empty: nothing to steal.
    "builtins escape": (
        "real = print.__self__.__import__\nos = real('os')\nprint(os.environ.get('OPENAI_API_KEY'))",
        0,
        False,
    ),
    "passwd": ("print(open('/etc/passwd').read())", 0, True),
    "memory bomb": ("x = 'a' * (1 << 34)", 0, True),
    "deep recursion": ("def f(n):\n    return f(n + 1)\nf(0)", 0, True),
    # The sandbox refuses sub-calls past max_queries (10) per execution.
    "subcall flood": ("for i in range(50):\n    llm_query(str(i))", 10, True),
}


@pytest.mark.parametrize(("code", "subcalls", "errs"), list(ATTEMPTS.values()), ids=list(ATTEMPTS))
def test_hostile_code_is_contained_and_the_run_goes_on(
    server: OpenAIServer, otel: Otel, monkeypatch: pytest.MonkeyPatch, code: str, subcalls: int, errs: bool
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    recorder = Recorder()
    server.queue_reply(f"```repl\n{code}\n```")
    for _ in range(subcalls):  # scripted replies are FIFO: the sub-calls take theirs first
        server.queue_reply("ok")
    server.queue_reply("```repl\nFINAL('still here')\n```")
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=5, memory_bytes=512 << 20, max_queries=10)
    rlm = make_rlm(server, otel, recorder, config=RLMConfig(sandbox_limits=limits, max_subcalls=20))
    result = rlm.run("Try it", context="nothing to see")
    assert (result.status, result.answer) == ("final", "still here")
    feedback = str(result.transcript[3]["content"])
    first_tool = next(s for s in otel.finished() if s.name == "execute_tool repl")
    if errs:
        assert "Error" in feedback or "killed" in feedback
        assert (first_tool.attributes or {}).get("error.type"), "the attempt is visible on its span"
        assert [kw["tool_name"] for kw in recorder.of("on_error")][:1] == ["repl"]
    else:
        assert "None" in feedback
    # The key never reached the model, a span, or the result.
    assert API_KEY not in str(result.transcript)
    for span in otel.finished():
        assert API_KEY not in str(dict(span.attributes or {}))
    assert children_of_this_process() == []
