"""The public surface: sorted ``__all__`` everywhere, lazy top-level names, py.typed shipped."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

import rlm_toolkit

PUBLIC_PACKAGES = [
    "rlm_toolkit",
    "rlm_toolkit.callbacks",
    "rlm_toolkit.runtime",
    "rlm_toolkit.testing",
    "rlm_toolkit.evals",
    "rlm_toolkit.exporters",
    "rlm_toolkit.genai",
    "rlm_toolkit.instrumentation.openai",
]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for symbol in exported:
        assert getattr(module, symbol) is not None, f"{name}.{symbol} does not resolve"


def test_top_level_names() -> None:
    assert set(rlm_toolkit.__all__) == {
        "RLMCredentialsError",
        "RLM",
        "RLMConfig",
        "RLMResult",
        "__version__",
        "end_open_runs",
        "instrument",
        "uninstrument",
    }
    assert rlm_toolkit.__version__.count(".") == 2
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rlm_toolkit.nope  # noqa: B018


def test_import_is_light() -> None:
    """`import rlm_toolkit` runs in every process rlm-instrument starts: keep it cheap."""
    code = "import sys, rlm_toolkit; print(sorted(m for m in ('openai', 'httpx2', 'rich', 'opentelemetry.sdk') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_shipped() -> None:
    assert (pathlib.Path(rlm_toolkit.__file__).parent / "py.typed").exists()
