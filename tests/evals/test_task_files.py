"""Bad task files are refused before anything runs, with one line naming the line and the fix;
scorers; the task spec refuses secrets."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from rlm_toolkit.evals import EvalSpec, TaskFileError, contains, exact, load_tasks, numeric


def _write(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"id": "a", "prompt": "What?", "context": "text", "answer": "x"})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (json.dumps({"prompt": "What?"}), 'line 2: missing "id"; add "id"'),
        (json.dumps({"id": "b"}), 'line 2: missing "prompt"'),
        (
            json.dumps({"id": "b", "prompt": "q", "context_path": "nope.txt"}),
            "context_path 'nope.txt' does not exist; fix the path",
        ),
        (json.dumps({"id": "a", "prompt": "q"}), "line 2: duplicate id 'a' (first on line 1)"),
        ('{"id": "b", "prompt": ', "line 2: bad JSON"),
        (json.dumps({"id": "b", "prompt": "q", "scorer": "fuzzy"}), "unknown scorer 'fuzzy'"),
        (json.dumps({"id": "b", "prompt": "q", "colour": 1}), "unknown field 'colour'"),
    ],
)
def test_bad_task_file_is_one_line_naming_the_line(tmp_path: pathlib.Path, line: str, expected: str) -> None:
    path = _write(tmp_path / "t.jsonl", [GOOD, line])
    with pytest.raises(TaskFileError) as info:
        load_tasks(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and message.startswith(str(path))


def test_context_path_is_relative_to_the_task_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ctx.txt").write_text("hello")
    path = _write(tmp_path / "t.jsonl", [json.dumps({"id": "a", "prompt": "q", "context_path": "ctx.txt"})])
    (task,) = load_tasks(path)
    assert task.load_context() == "hello" and pathlib.Path(task.context_path or "").is_absolute()


def test_cli_refuses_a_bad_file_before_anything_runs(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "t.jsonl", [GOOD, json.dumps({"id": "a", "prompt": "q"})])
    proc = subprocess.run(
        [sys.executable, "-m", "rlm_toolkit.evals._cli", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "line 2: duplicate id 'a'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]  # no results, no traces


def test_scorers() -> None:
    assert exact(" Paris. ", "paris") == 1.0 and exact("Paris, France", "Paris") == 0.0
    assert contains("The code is 7319-ALPHA.", "7319-alpha") == 1.0 and contains("no", "yes") == 0.0
    assert numeric("There are 1,204 reviews", "1204") == 1.0
    assert numeric("about 99", "100", 0.02) == 1.0 and numeric("about 90", "100", 0.02) == 0.0
    assert numeric("none", "3") == 0.0


def test_user_scorer_is_checked_up_front(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps({"id": "a", "prompt": "q", "scorer": "json:nothere"})])
    with pytest.raises(TaskFileError, match="json has no function 'nothere'"):
        load_tasks(path)
    ok = _write(tmp_path / "u.jsonl", [json.dumps({"id": "a", "prompt": "q", "scorer": "operator:eq"})])
    assert load_tasks(ok)[0].scorer == "operator:eq"


def test_spec_keeps_secrets_out_and_checks_the_config() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        EvalSpec("m", client_options={"api_key": "sk-x"})
    with pytest.raises(ValueError, match="unknown RLMConfig field 'max_turns'"):
        EvalSpec("m", config={"max_turns": 3})
    import pickle

    spec = EvalSpec("m", sub_model="s", config={"max_iterations": 4}, client_options={"timeout": 5.0})
    assert pickle.loads(pickle.dumps(spec)) == spec
