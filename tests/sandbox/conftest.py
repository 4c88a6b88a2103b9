"""Fixtures: a real worker process per test (small limits so limit tests end quickly)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_toolkit.sandbox import Sandbox, SandboxLimits

from .helpers import SECRET


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


@pytest.fixture
def public_secret() -> Iterator[Path]:
    """A host file any uid may read by its permissions (a 0755 dir in /tmp, a 0644 file), so
    only the sandbox's own layers stand between it and the worker."""
    directory = Path(tempfile.mkdtemp(prefix="rlm-host-"))
    os.chmod(directory, 0o755)
    secret = directory / "secret.txt"
    secret.write_text(SECRET)
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(directory, ignore_errors=True)
