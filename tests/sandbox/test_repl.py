"""The REPL contract the runtime relies on: namespace, output, errors, FINAL, answer, sub-calls."""

from __future__ import annotations

import pytest

from rlm_toolkit import sandbox as sandbox_pkg
from rlm_toolkit.sandbox import ExecutionResult, Sandbox, SandboxLimits

from .conftest import Handler


def test_public_names() -> None:
    assert sandbox_pkg.__all__ == sorted(sandbox_pkg.__all__)
    assert set(sandbox_pkg.__all__) == {
        "ExecutionResult",
        "QueryHandler",
        "ReadySandboxes",
        "Sandbox",
        "SandboxLimits",
    }


def test_namespace_persists_and_output_is_captured(sandbox: Sandbox) -> None:
    first = sandbox.execute(
        "x = 41\nprint('x is', x)\nsys = print.__self__.__import__('sys')\nprint('err', file=sys.stderr)"
    )
    assert first == ExecutionResult("x is 41\nerr\n", None, None, None, None, first.duration_s, 0)
    assert sandbox.execute("x + 1").output == "42\n"  # a trailing expression is shown, as in a REPL
    assert sandbox.execute("y = x").output == ""


def test_error_is_a_trimmed_traceback_of_the_code_only(sandbox: Sandbox) -> None:
    result = sandbox.execute("def f():\n    return 1 / 0\nprint('before')\nf()")
    assert result.output == "before\n"
    assert result.killed is None
    assert result.error is not None
    assert result.error.startswith("Traceback (most recent call last):")
    assert result.error.endswith("ZeroDivisionError: division by zero")
    assert "return 1 / 0" in result.error
    assert "_repl.py" not in result.error and "_worker.py" not in result.error
    syntax = sandbox.execute("def (")
    assert syntax.error is not None and "SyntaxError" in syntax.error


def test_import_allow_list_gives_a_clear_error(sandbox: Sandbox) -> None:
    assert (
        sandbox.execute(
            "import re, json, math, collections, statistics, datetime\nre.sub('a', 'b', 'aa')"
        ).output
        == "'bb'\n"
    )
    result = sandbox.execute("import subprocess")
    assert result.error is not None
    assert "ImportError: module 'subprocess' is not available in the sandbox" in result.error


def test_final_and_final_var(sandbox: Sandbox) -> None:
    assert sandbox.execute("FINAL(6 * 7)").final == "42"
    assert sandbox.execute("print('no final')").final is None
    assert sandbox.execute("result = ['a']\nFINAL_VAR('result')").final == "['a']"
    missing = sandbox.execute("FINAL_VAR('nope')")
    assert missing.final is None
    assert missing.error is not None and "FINAL_VAR: no variable named 'nope'" in missing.error


def test_answer_is_reported_when_touched(sandbox: Sandbox) -> None:
    assert sandbox.execute("answer").output == "{'content': '', 'ready': False}\n"
    assert sandbox.execute("1").answer is None
    assert sandbox.execute("answer['content'] = 'draft'").answer == {"content": "draft", "ready": False}
    assert sandbox.execute("answer['ready'] = True").answer == {"content": "draft", "ready": True}


def test_sub_calls_cross_to_the_handler(sandbox: Sandbox, handler: Handler) -> None:
    code = "a = llm_query('hi')\nb = llm_query_batched(['x', 'y'], model='m')\nc = rlm_query('q', {'k': [1]})\nprint(a, b, c)"
    result = sandbox.execute(code, handler)
    assert result.error is None
    assert result.output == "<default:hi> ['<m:x>', '<m:y>'] rlm(q, {'k': [1]})\n"
    assert result.queries == 4
    assert handler.calls == [("llm", (["hi"], None)), ("llm", (["x", "y"], "m")), ("rlm", ("q", {"k": [1]}))]


def test_handler_errors_reach_the_code_as_runtime_error(sandbox: Sandbox) -> None:
    class Failing(Handler):
        def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
            raise ConnectionError("upstream down")

    code = "try:\n    llm_query('x')\nexcept RuntimeError as e:\n    print('caught', e)"
    assert sandbox.execute(code, Failing()).output == "caught upstream down\n"
    no_handler = sandbox.execute("llm_query('x')")
    assert no_handler.error is not None and "no query handler" in no_handler.error


def test_sub_call_flood_is_cut_off(sandbox: Sandbox, handler: Handler) -> None:
    code = "n = 0\nwhile True:\n    try:\n        llm_query('x')\n        n += 1\n    except RuntimeError:\n        break\nprint(n)"
    result = sandbox.execute(code, handler)
    assert result.output == "5\n"
    assert result.queries == 5
    assert len(handler.calls) == 5
    assert result.error is not None and "sub-call limit reached: at most 5" in result.error
    assert sandbox.execute("llm_query('again')", handler).queries == 1  # the budget is per execution


def test_output_is_truncated_with_a_marker(sandbox: Sandbox) -> None:
    result = sandbox.execute("print('a' * 2500)")
    assert result.output == "a" * 1000 + "\n[... 1501 more characters of output cut (output_chars=1000)]"


def test_context_of_ten_million_characters(sandbox: Sandbox) -> None:
    text = "abcdefghij" * 1_000_000
    sandbox.set_context(text)
    assert sandbox.execute("len(context), context[:3], context[-2:]").output == "(10000000, 'abc', 'ij')\n"
    sandbox.set_context({"docs": ["d1", "d2"]})
    assert sandbox.execute("context['docs'][1]").output == "'d2'\n"


def test_context_is_reloaded_after_a_crash(sandbox: Sandbox) -> None:
    sandbox.set_context(["one", "two"])
    sandbox.execute("kept = 1")
    crashed = sandbox.execute("print.__self__.__import__('os')._exit(7)")
    assert crashed.killed == "crash"
    assert (
        crashed.error is not None
        and "exit status 7" in crashed.error
        and "variables are lost" in crashed.error
    )
    after = sandbox.execute("print(context)\nkept")
    assert after.output == "['one', 'two']\n"
    assert after.error is not None and "NameError" in after.error


def test_bad_input_is_refused_with_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"SandboxLimits.wall_seconds must be a positive number"):
        SandboxLimits(wall_seconds=0)
    with pytest.raises(ValueError, match=r"SandboxLimits.memory_bytes must be an integer >= 67108864"):
        SandboxLimits(memory_bytes=10)
    with pytest.raises(TypeError, match="takes a SandboxLimits"):
        Sandbox(limits={"cpu_seconds": 1})  # type: ignore[arg-type]
    box = Sandbox()
    with pytest.raises(TypeError, match="set_context\\(\\) takes a str, list or dict"):
        box.set_context(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="the context must be JSON data"):
        box.set_context({"k": object()})
    with pytest.raises(TypeError, match="execute\\(\\) takes the code as a str"):
        box.execute(b"1")  # type: ignore[arg-type]
    box.close()
    with pytest.raises(RuntimeError, match="this Sandbox is closed"):
        box.execute("1")
