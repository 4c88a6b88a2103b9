"""Task files: JSONL lines of ``id``, ``prompt``, ``context`` (inline) or ``context_path``, and
optional ``answer`` and ``scorer``; checked whole before anything runs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rlm_toolkit.evals._scorers import check_scorer

_KNOWN = frozenset({"id", "prompt", "context", "context_path", "answer", "scorer"})


class TaskFileError(ValueError):
    """A task file that cannot run; the message is one line naming the line and the fix."""


@dataclass(frozen=True)
class Task:
    """One eval task. ``context_path`` is read by the worker (it must be visible there)."""

    id: str
    prompt: str
    context: str | None = None
    context_path: str | None = None
    answer: str | None = None
    scorer: str = "exact"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (picklable, JSON-able) the worker turns back with :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(**{k: data[k] for k in _KNOWN if k in data})

    def load_context(self) -> str | None:
        """The context text: inline, or read from ``context_path``."""
        if self.context_path is not None:
            with open(self.context_path, encoding="utf-8") as f:
                return f.read()
        return self.context


def _task(obj: Any, where: str, base: str) -> Task:
    if not isinstance(obj, dict):
        raise TaskFileError(f'{where}: expected a JSON object like {{"id": "t1", "prompt": "..."}}')
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise TaskFileError(f"{where}: unknown field {unknown[0]!r}; use only {', '.join(sorted(_KNOWN))}")
    for field in ("id", "prompt"):
        if field not in obj:
            raise TaskFileError(f'{where}: missing "{field}"; add "{field}": "<text>" to the line')
        if not isinstance(obj[field], str) or not obj[field]:
            raise TaskFileError(f'{where}: "{field}" must be a non-empty string')
    if "context" in obj and "context_path" in obj:
        raise TaskFileError(f'{where}: give "context" or "context_path", not both')
    if "context" in obj and not isinstance(obj["context"], str):
        raise TaskFileError(f'{where}: "context" must be a string (or use "context_path" for a file)')
    path = obj.get("context_path")
    if path is not None:
        if not isinstance(path, str):
            raise TaskFileError(f'{where}: "context_path" must be a string path')
        full = path if os.path.isabs(path) else os.path.join(base, path)
        if not os.path.isfile(full):
            raise TaskFileError(
                f"{where}: context_path {path!r} does not exist; fix the path (relative paths are "
                "relative to the task file)"
            )
        obj = {**obj, "context_path": os.path.abspath(full)}
    if "answer" in obj and not isinstance(obj["answer"], (str, int, float)):
        raise TaskFileError(f'{where}: "answer" must be a string or a number')
    if "answer" in obj:
        obj = {**obj, "answer": str(obj["answer"])}
    scorer = obj.get("scorer", "exact")
    problem = check_scorer(scorer)
    if problem:
        raise TaskFileError(f"{where}: {problem}")
    return Task.from_dict(obj)


def load_tasks(path: str | os.PathLike[str]) -> list[Task]:
    """All tasks of a JSONL file, or :class:`TaskFileError` (one line: file, line number, fix)
    for bad JSON, a missing field, a context path that does not exist or a duplicate id."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TaskFileError(f"{path}: no such task file; pass a JSONL file of tasks")
    base = os.path.dirname(os.path.abspath(path))
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskFileError(
                    f"{where}: bad JSON ({exc.msg} at column {exc.colno}); one object per line"
                ) from None
            task = _task(obj, where, base)
            if task.id in seen:
                raise TaskFileError(
                    f"{where}: duplicate id {task.id!r} (first on line {seen[task.id]}); give each task its own id"
                )
            seen[task.id] = number
            tasks.append(task)
    if not tasks:
        raise TaskFileError(f"{path}: no tasks; add one JSON object per line")
    return tasks
