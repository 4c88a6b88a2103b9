"""A rich progress bar (done, running accuracy, cost so far, ETA); silent when not a TTY."""

from __future__ import annotations

import sys
from typing import Any


class EvalProgress:
    """Progress over ``total`` tasks, ``done`` of them already finished (a resumed eval)."""

    def __init__(self, total: int, done: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._scores: list[float] = []
        self._cost = 0.0
        self._progress: Any = None
        self._task: Any = None
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("rlm-eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("acc {task.fields[acc]}  cost ${task.fields[cost]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("eval", total=total, completed=done, acc="n/a", cost="0")
        self._progress.start()

    def update(self, row: dict[str, Any]) -> None:
        if row.get("score") is not None:
            self._scores.append(float(row["score"]))
        self._cost += float(row.get("cost") or 0.0)
        if self._progress is not None:
            acc = f"{sum(self._scores) / len(self._scores):.0%}" if self._scores else "n/a"
            self._progress.update(self._task, advance=1, acc=acc, cost=f"{self._cost:.4f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
