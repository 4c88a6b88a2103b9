"""Helpers shared by the evals tests."""

from __future__ import annotations

import pathlib
from typing import Any


def comparable(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What must not differ between two runs of the same tasks (not latency, not trace ids)."""
    keys = ("status", "answer", "score", "input_tokens", "output_tokens", "cost", "iterations", "subcalls")
    return {r["id"]: tuple(r.get(k) for k in keys) for r in rows}


def read_lines(path: str | pathlib.Path) -> list[str]:
    p = pathlib.Path(path)
    return p.read_text().splitlines() if p.exists() else []
