"""Fixtures: a real worker process per test (small limits so limit tests end quickly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rlm_toolkit.sandbox import Sandbox, SandboxLimits

#: The inner layer (the import allow-list) is bypassable on purpose: this reaches the real
#: ``__import__`` through a builtin function's module, as hostile code would. Tests of the
#: kernel layers start with it, so they prove the outer layers hold on their own.
ESCAPE = "real_import = print.__self__.__import__\nos = real_import('os')\n"


class Handler:
    """A real QueryHandler: records calls, answers deterministically."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
        self.calls.append(("llm", (prompts, model)))
        return [f"<{model or 'default'}:{p}>" for p in prompts]

    def rlm_query(self, prompt: str, context: Any) -> str:
        self.calls.append(("rlm", (prompt, context)))
        return f"rlm({prompt}, {context!r})"


@pytest.fixture
def limits() -> SandboxLimits:
    return SandboxLimits(
        cpu_seconds=2, wall_seconds=4, memory_bytes=512 << 20, output_chars=1000, max_queries=5
    )


@pytest.fixture
def sandbox(limits: SandboxLimits) -> Iterator[Sandbox]:
    with Sandbox(limits=limits) as box:
        yield box


@pytest.fixture
def handler() -> Handler:
    return Handler()
