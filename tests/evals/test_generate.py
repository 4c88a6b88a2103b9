"""Task generators: valid task files whose answers are true of their contexts."""

from __future__ import annotations

import pathlib
import re

import pytest

from rlm_toolkit.evals import aggregation_tasks, load_tasks, needle_tasks


def test_needle_tasks_hide_their_answer_once(tmp_path: pathlib.Path) -> None:
    tasks = load_tasks(needle_tasks(str(tmp_path), count=3, chars=10_000, seed=7))
    assert len({t.answer for t in tasks}) == 3
    for task in tasks:
        text = task.load_context() or ""
        assert len(text) == 10_000
        assert text.count(f"The secret launch code is {task.answer}.") == 1
        assert len(re.findall(r"secret", text)) == 1  # the filler never says it


def test_needle_sizes_are_bounded(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="between 10,000 and 10,000,000"):
        needle_tasks(str(tmp_path), chars=9_999)


def test_aggregation_answers_are_the_counts(tmp_path: pathlib.Path) -> None:
    tasks = load_tasks(aggregation_tasks(str(tmp_path), count=3, records=300, seed=1))
    for task in tasks:
        label = re.search(r"\[(\w+)\]", task.prompt)
        assert label is not None
        lines = (task.load_context() or "").splitlines()
        assert len(lines) == 300
        assert task.answer == str(sum(f"[{label.group(1)}]" in line for line in lines))
        assert task.scorer == "numeric"
