"""The runtime knows no SDK and looks no pipeline up: nothing under ``rlm_toolkit/runtime/``
imports ``rlm_toolkit.instrumentation`` or ``rlm_toolkit._instrument`` (at module level or inside
a function). The SDK's model provider and the app's instrumentation reach an ``RLM`` through the
composition root, ``rlm_toolkit._providers``."""

from __future__ import annotations

import ast
from pathlib import Path

import rlm_toolkit

RUNTIME = Path(rlm_toolkit.__file__).resolve().parent / "runtime"
FORBIDDEN = ("rlm_toolkit.instrumentation", "rlm_toolkit._instrument")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_runtime_imports_no_instrumentation() -> None:
    files = sorted(RUNTIME.glob("*.py"))
    assert len(files) > 10  # the package is where we think it is
    offending = {
        f"{path.name}: {name}" for path in files for name in _imports(path) if name.startswith(FORBIDDEN)
    }
    assert offending == set()


def test_the_check_sees_a_function_level_import(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from rlm_toolkit._instrument import active_handler\n", encoding="utf-8")
    assert "rlm_toolkit._instrument" in _imports(planted)
