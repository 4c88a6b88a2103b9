"""Our internal errors never fail a user's own pytest run (regression: strict mode used to be
switched on by merely importing pytest)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlm_toolkit import _safety


def test_contain_swallows_unless_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_TOOLKIT_STRICT", "0")
    _safety.contain("x", RuntimeError("boom"))  # no raise
    monkeypatch.setenv("RLM_TOOLKIT_STRICT", "1")
    error = ZeroDivisionError("ours")
    with pytest.raises(ZeroDivisionError) as info:
        _safety.contain("x", error)
    assert info.value is error


def test_users_pytest_run_is_not_strict(tmp_path: Path) -> None:
    (tmp_path / "test_user_app.py").write_text(
        textwrap.dedent(
            """
            from rlm_toolkit import _safety

            def test_user_code():
                _safety.contain("an internal rlm-toolkit bug", RuntimeError("ours, not yours"))
            """
        )
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "RLM_TOOLKIT_STRICT"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
