"""What ``import rlm_toolkit`` + ``RLM.from_openai(...)`` loads (#24): behaviour, not timing.

The time itself is measured by ``benchmarks/import_time.py``; here we pin *which* modules a
construction pulls in, so a stray top-level import of an SDK or of the callback machinery
shows up as a failure rather than as a slow drift in the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys

CONSTRUCT = """
import json, sys
import rlm_toolkit
from rlm_toolkit import RLM
RLM.from_openai("gpt-4o-mini", api_key="x", base_url="http://127.0.0.1:9")
print(json.dumps(sorted(sys.modules)))
"""

#: Not needed to build an RLM: the SDK client is made on the first call, and the callback
#: processors/exporter (with the OTel SDK's export layer) only when a callback is attached.
NOT_AT_CONSTRUCTION = [
    "openai",
    "anthropic",
    "opentelemetry.sdk.trace.export",
    "rlm_toolkit.callbacks._dispatch",
    "rlm_toolkit.callbacks._exporter",
    "rlm_toolkit.callbacks._extract",
    "rlm_toolkit.callbacks._log_processor",
    "rlm_toolkit.callbacks._span_processor",
]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_construction_loads_no_sdk_and_no_callback_machinery() -> None:
    modules = loaded_after(CONSTRUCT)
    assert "rlm_toolkit.runtime" in modules  # the construction really ran
    assert sorted(set(NOT_AT_CONSTRUCTION) & modules) == []


def test_callback_names_load_their_machinery_on_first_use() -> None:
    code = (
        "import json, sys\n"
        "import rlm_toolkit.callbacks as cb\n"
        "before = '_exporter' in dir(cb) or 'rlm_toolkit.callbacks._exporter' in sys.modules\n"
        "exporter = cb.CallbackSpanExporter\n"
        "print(json.dumps([before, exporter.__module__, 'rlm_toolkit.callbacks._exporter' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, "rlm_toolkit.callbacks._exporter", True]
