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
    # The stream proxies (wrapt, which pulls asyncio and importlib.metadata) and the
    # instrumentation's wrappers load with the first call, not with the RLM.
    "wrapt",
    "importlib.metadata",
    "rlm_toolkit.genai._stream",
    "rlm_toolkit.instrumentation",
    "rlm_toolkit.instrumentation.openai",
    # BaseInstrumentor and, through it, packaging: only an instrumentation needs them.
    "opentelemetry.instrumentation.instrumentor",
    "packaging",
    # The OpenTelemetry SDK: the handler tells SDK providers apart without importing it, and
    # processor discovery imports it when a callback is attached.
    "opentelemetry.sdk._logs",
    "opentelemetry.sdk.resources",
    "opentelemetry.sdk.trace",
    # The GenAI metric instruments are made with a handler; building an RLM makes none.
    "rlm_toolkit.genai._instruments",
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


def test_genai_names_load_their_module_on_first_use() -> None:
    code = (
        "import json, sys\n"
        "import rlm_toolkit.genai as genai\n"
        "before = [m in sys.modules for m in ('rlm_toolkit.genai._stream', 'wrapt', 'opentelemetry.sdk.trace')]\n"
        "proxy = genai.SyncStreamProxy\n"
        "after = [m in sys.modules for m in ('rlm_toolkit.genai._stream', 'wrapt')]\n"
        "try:\n"
        "    genai.nope\n"
        "    missing = None\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "print(json.dumps([before, proxy.__module__, after, 'SyncStreamProxy' in dir(genai), missing]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [
        [False, False, False],
        "rlm_toolkit.genai._stream",
        [True, True],
        True,
        "module 'rlm_toolkit.genai' has no attribute 'nope'",
    ]


def test_handler_tells_sdk_providers_apart_without_importing_the_sdk() -> None:
    """The handler's SDK check must still recognise SDK providers once the SDK is loaded (what
    callbacks and the exit flush rely on), and a no-op provider must not load the SDK."""
    code = (
        "import json, sys\n"
        "from opentelemetry.trace import NoOpTracerProvider\n"
        "from rlm_toolkit.genai import TelemetryHandler\n"
        "noop = TelemetryHandler(tracer_provider=NoOpTracerProvider())\n"
        "first = [noop.sdk_tracer_provider() is None, 'opentelemetry.sdk.trace' in sys.modules]\n"
        "from opentelemetry.sdk._logs import LoggerProvider\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "tp, lp = TracerProvider(), LoggerProvider()\n"
        "sdk = TelemetryHandler(tracer_provider=tp, logger_provider=lp)\n"
        "print(json.dumps(first + [sdk.sdk_tracer_provider() is tp, sdk.sdk_logger_provider() is lp,"
        " sdk.in_process() is sdk]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [True, False, True, True, True]
