"""Frames forged by the code itself (it can write to its own end of the pipe): whatever the bytes,
the host ends with a killed worker and a clear reason, never an exception out of ``execute()``
(issue #21 items 1-3); text the host takes from the worker is always valid Unicode."""

from __future__ import annotations

import pytest

from rlm_toolkit.sandbox import Sandbox

from .conftest import Handler
from .helpers import ESCAPE

FORGE = (
    ESCAPE
    + "st = imp('struct')\nw = int(imp('sys').argv[2])\n"
    + "def forge(body):\n    os.write(w, st.pack('!I', len(body)) + body)\n"
)
DONE = b'"op":"done","error":null,"answer":null,"memory":false'

# Each body makes json.loads (or what follows it) raise something other than the ValueError the
# host used to catch, or is a well-formed JSON value of the wrong shape.
BAD_BODIES = {
    "deep_list": b"[" * 100_000 + b"]" * 100_000,  # RecursionError in the C scanner
    "deep_dict": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "op_not_first": b'{"text":"x","op":"out"}',  # the host reads a frame's op from its start
    "deep_but_parsable": b'{"op":"done","error":null,"final":null,"memory":false,"answer":{"content":'
    + b"[" * 200
    + b"]" * 200
    + b',"ready":true}}',  # json.loads copes; a later repr or json.dumps of it would not
    "huge_int": b'{"op":"out","text":"x","n":' + b"9" * 5000 + b"}",  # int max str digits
    "invalid_utf8": b'{"op":"out","text":"\xff\xfe"}',
    "space_after_brace": b'{ "op":"out","text":"x"}',
    "not_an_object": b"[1,2,3]",
    "op_not_text": b'{"op":5}',
    "text_not_str": b'{"op":"out","text":["x"]}',
    "final_not_str": b"{" + DONE + b',"final":{"a":1}}',
    "answer_wrong_keys": b'{"op":"done","error":null,"final":null,"memory":false,"answer":{"x":1}}',
    "unknown_op": b'{"op":"launch"}',
    "nan_and_inf": b'{"op":"out","text":NaN}',
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_forged_frame_kills_the_worker_never_the_host(sandbox: Sandbox, name: str) -> None:
    body = BAD_BODIES[name]
    if name in ("deep_list", "deep_dict"):
        body = b'{"op":"done","v":' + body + b"}"  # past the host's op-first check
    result = sandbox.execute(FORGE + f"forge({body!r})\nimp('time').sleep(60)")
    assert result.killed == "crash", result
    assert "broke the protocol" in str(result.error)
    assert sandbox.execute("print('fine')").output == "fine\n"  # a new worker took over


def test_an_honest_deep_answer_is_sent_as_text_not_refused(sandbox: Sandbox) -> None:
    code = "x = []\nfor _ in range(200):\n    x = [x]\nanswer['content'] = x\nanswer['ready'] = True"
    result = sandbox.execute(code)
    assert result.killed is None and result.error is None
    assert result.answer is not None and result.answer["content"].startswith("[[[[")


def test_an_honest_deep_rlm_query_context_is_a_clear_error(sandbox: Sandbox, handler: Handler) -> None:
    code = "x = []\nfor _ in range(200):\n    x = [x]\nrlm_query('p', x)"
    result = sandbox.execute(code, handler)
    assert result.killed is None and "nested deeper than" in str(result.error)
    assert handler.calls == []


LONE = [
    ("escaped_high", b"a\\ud800b"),
    ("escaped_low", b"a\\udfffb"),
    ("raw_surrogate_bytes", b"a\xed\xa0\x80b"),  # UTF-8 of U+D800, which strict UTF-8 refuses
]


@pytest.mark.parametrize(("name", "text"), LONE, ids=[n for n, _ in LONE])
def test_lone_surrogates_from_the_worker_become_replacement_characters(
    sandbox: Sandbox, name: str, text: bytes
) -> None:
    out = b'{"op":"out","text":"' + text + b'"}'
    answer = b'"answer":{"content":{"k' + text + b'":["' + text + b'"]},"ready":true}'
    done = b'{"op":"done","error":"' + text + b'","final":"' + text + b'","memory":false,' + answer + b"}"
    result = sandbox.execute(FORGE + f"forge({out!r})\nforge({done!r})\nimp('time').sleep(60)")
    assert result.killed is None
    for value in (result.output, result.final, result.error, repr(result.answer)):
        assert value is not None and "a\ufffdb" in value
        value.encode("utf-8")  # printable and sendable to a model: no lone surrogate survived
    assert result.answer == {"content": {"ka\ufffdb": ["a\ufffdb"]}, "ready": True}


def test_a_valid_escaped_surrogate_pair_is_kept(sandbox: Sandbox) -> None:
    out = b'{"op":"out","text":"\\ud83d\\ude00"}'
    result = sandbox.execute(FORGE + f"forge({out!r})\nforge(b'{{{DONE.decode()},\"final\":null}}')")
    assert result.killed is None and result.output.startswith("\U0001f600")


class SurrogateHandler(Handler):
    def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
        super().llm_query(prompts, model)
        return ["reply \ud800 end" for _ in prompts]

    def rlm_query(self, prompt: str, context: object) -> str:
        super().rlm_query(prompt, context)
        return "nested \udc00 end"


def test_a_sub_model_reply_with_a_lone_surrogate_is_not_a_protocol_violation(sandbox: Sandbox) -> None:
    handler = SurrogateHandler()
    result = sandbox.execute("print(llm_query('q'))\nprint(rlm_query('q'))", handler)
    assert result.killed is None and result.error is None
    assert result.output == "reply \ufffd end\nnested \ufffd end\n"
    assert sandbox.execute("print(1)").output == "1\n"  # the same worker goes on


# -- what the host holds per execution (issue #21 item 3) ---------------------------------------
FLOOD = (
    'body = b\'{"op":"out","text":"\' + b\'x\' * (60 << 20) + b\'"}\'\n'
    "for _ in range(4):\n    os.write(w, st.pack('!I', len(body)) + body)\n"
    "imp('time').sleep(60)\n"
)
MEASURE = """
import sys
from rlm_toolkit.sandbox import Sandbox, SandboxLimits
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) >> 10
with Sandbox(limits=SandboxLimits(memory_bytes=1 << 30, wall_seconds=60)) as box:
    box.execute('1')
    before = hwm()
    result = box.execute(sys.argv[1])
    print(result.killed, hwm() - before)
"""


def test_four_forged_60mb_output_frames_are_refused_before_the_host_buffers_them() -> None:
    """The issue measured a 363 MB host RSS; now the first frame's first bytes end it (the host's
    peak grows by less than one such frame). Measured in a fresh process for a clean peak."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", MEASURE, FORGE + FLOOD],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    killed, grown = run.stdout.split()
    assert killed == "output"
    assert int(grown) < 30, f"host peak RSS grew by {grown} MiB"


def test_many_small_forged_output_frames_count_against_the_execution(sandbox: Sandbox) -> None:
    """output_chars=1000 in these tests: an honest worker sends at most 1000 characters of
    output frames per execution, so 2000 frames of 100 characters are forged."""
    code = (
        FORGE
        + 'b = b\'{"op":"out","text":"\' + b\'y\' * 100 + b\'"}\'\nfor _ in range(2000):\n    forge(b)\n'
    )
    result = sandbox.execute(code + "imp('time').sleep(60)")
    assert result.killed == "output" and "more output than output_chars allows" in str(result.error)
    assert len(result.output) <= 1000 + 200  # what was kept before the flood, with its marker
    assert sandbox.execute("print('x' * 5000)").output.startswith("x" * 1000)  # honest output still flows


def test_forged_frames_through_a_whole_run_never_raise_out_of_rlm_run() -> None:
    """The runtime's side (issue #21 items 1-2): a surrogate in forged output reaches the next
    root prompt as U+FFFD (the openai client used to raise UnicodeEncodeError), a deeply nested
    frame ends in a killed worker, and a forged FINAL with a surrogate is a printable answer."""
    from rlm_toolkit import RLM, RLMConfig
    from rlm_toolkit.sandbox import SandboxLimits
    from rlm_toolkit.testing import OpenAIServer

    done = b'{"op":"done","error":null,"answer":null,"memory":false,"final":'
    out = b'{"op":"out","text":"out\\ud800put"}'
    final = done + b'"an\\udc00swer"}'
    turns = [
        f"forge({out!r})",  # the worker's own end of execution follows
        "forge(b'{\"op\":\"done\",\"v\":' + b'[' * 100_000 + b']' * 100_000 + b'}')\nimp('time').sleep(60)",
        f"forge({final!r})\nimp('time').sleep(60)",
    ]
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=10)
    with OpenAIServer() as server:
        for code in turns:
            server.queue_reply(f"```repl\n{FORGE}{code}\n```")
        rlm = RLM.from_openai(
            "gpt-4o-mini",
            api_key="sk-test-offline",
            base_url=server.base_url,
            config=RLMConfig(sandbox_limits=limits),
        )
        result = rlm.run("Try it", context="nothing to see")
    assert (result.status, result.answer) == ("final", "an\ufffdswer"), result
    transcript = str(result.transcript)
    assert "out\ufffdput" in transcript and "broke the protocol" in transcript
    transcript.encode("utf-8")
