"""The results file (one JSON line per finished task, appended and flushed as it finishes) and
the summary computed from it."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any


class ResultsFile:
    """Append-only results JSONL; each line is written whole, flushed and fsynced."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: IO[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        """The rows already in the file (a torn last line from a crash is ignored)."""
        if not os.path.exists(self.path):
            return []
        rows: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("id"), str):
                    rows.append(row)
        return rows

    def append(self, row: Mapping[str, Any]) -> None:
        if self._file is None:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the eval
            if self._file.tell() and not _ends_with_newline(self.path):
                self._file.write("\n")  # after a torn line, start a fresh one
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class EvalSummary:
    """Accuracy, cost, tokens, latency and status counts over a results file's rows."""

    tasks: int
    scored: int
    accuracy: float | None
    cost: float
    input_tokens: int
    output_tokens: int
    p50_seconds: float | None
    p95_seconds: float | None
    statuses: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, Any]], not_started: int = 0) -> EvalSummary:
        """The summary of ``rows``; ``not_started`` tasks (an eval-wide budget stopped them)
        are counted under the status ``not_started`` (they have no row, so a resume runs them)."""
        rows = list(rows)
        statuses = Counter(str(r.get("status")) for r in rows)
        if not_started:
            statuses["not_started"] = not_started
        scores = [float(r["score"]) for r in rows if r.get("score") is not None]
        seconds = [float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float))]
        return cls(
            tasks=len(rows),
            scored=len(scores),
            accuracy=sum(scores) / len(scores) if scores else None,
            cost=sum(float(r.get("cost") or 0.0) for r in rows),
            input_tokens=sum(int(r.get("input_tokens") or 0) for r in rows),
            output_tokens=sum(int(r.get("output_tokens") or 0) for r in rows),
            p50_seconds=_percentile(seconds, 0.5),
            p95_seconds=_percentile(seconds, 0.95),
            statuses=dict(sorted(statuses.items())),
        )

    def table(self) -> Any:
        """A ``rich`` table of the summary (latency only varies between runs)."""
        from rich.table import Table

        table = Table(title="rlm-eval summary", show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        acc = "n/a" if self.accuracy is None else f"{self.accuracy:.1%} ({self.scored} scored)"
        table.add_row("tasks", str(self.tasks))
        table.add_row("accuracy", acc)
        table.add_row("cost (USD)", f"{self.cost:.6f}")
        table.add_row("tokens in / out", f"{self.input_tokens:,} / {self.output_tokens:,}")
        for name, value in (("latency p50", self.p50_seconds), ("latency p95", self.p95_seconds)):
            table.add_row(name, "n/a" if value is None else f"{value:.2f} s")
        table.add_row("status", ", ".join(f"{k}: {v}" for k, v in self.statuses.items()))
        return table
