"""``import rlm_toolkit`` + ``RLM.from_openai(...)`` import no LLM SDK (#24 item 3): the client
is made on the first run, and the instrumentation's modules resolve SDK types on first use."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import rlm_toolkit
from rlm_toolkit import RLM
RLM.from_openai("gpt-4o", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
rlm_toolkit.instrument  # the library entrance, resolved
from rlm_toolkit import _instrument
print(json.dumps({name: name in sys.modules for name in ("openai", "anthropic")}))
"""


def test_construct_imports_no_sdk() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"openai": False, "anthropic": False}
