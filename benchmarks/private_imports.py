"""How many test files import a private ``rlm_toolkit`` module or name (the project keeps the
share below one third).

A file counts when any import in it (module level or inside a function, read with ``ast``)
names a dotted segment starting with ``_`` (``rlm_toolkit.genai._context``) or imports a
``_name`` from one of our packages (``from rlm_toolkit.genai import _reaper``).

    python benchmarks/private_imports.py        # "N / M" test files
    python benchmarks/private_imports.py -v     # ... and which private names each one imports
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def private_imports(path: Path) -> set[str]:
    """The private ``rlm_toolkit`` modules and names ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(
                a.name
                for a in node.names
                if a.name.startswith("rlm_toolkit") and any(s.startswith("_") for s in a.name.split("."))
            )
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlm_toolkit"):
            if any(s.startswith("_") for s in node.module.split(".")):
                found.add(node.module)
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            )
    return found


def main() -> None:
    files = sorted(TESTS.rglob("test_*.py"))
    hits = [(path, names) for path in files if (names := private_imports(path))]
    if "-v" in sys.argv:
        for path, names in hits:
            print(path.relative_to(TESTS.parent), " ".join(sorted(names)))
    print(f"{len(hits)} / {len(files)} test files import private modules")


if __name__ == "__main__":
    main()
