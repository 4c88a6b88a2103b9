"""Import + construct: ``import rlm_toolkit`` and ``RLM.from_openai(...)`` in a fresh interpreter.

Issue #24 item 3 asks for under 250 ms. Each sample is a new ``python`` process (nothing cached
in ``sys.modules``), timed from inside the process around the import and the construction, so
interpreter start-up is excluded and a slow process spawn does not count. The report is the
median of ``--runs`` samples, plus which of a list of heavy modules the process ended up
importing (the part that is behaviour, not timing: ``tests/test_import_cost.py`` asserts it).

    python benchmarks/import_time.py                # median of 7
    python benchmarks/import_time.py --runs 15 --importtime 15
    python benchmarks/import_time.py --also         # + `import rlm_toolkit`, `import rlm_toolkit.testing`

``--also`` times two more snippets in the same fresh-interpreter way, interleaved with the
construction samples (so the three see the same load): ``import rlm_toolkit`` alone (what every
process ``rlm-instrument`` starts pays) and ``import rlm_toolkit.testing`` (the offline server
``make demo`` starts). "Before" numbers: run it with the previous commit's ``src`` first on
``PYTHONPATH`` (the samples' environment keeps it).

``--importtime N`` adds one ``python -X importtime`` run and prints the N modules with the
largest cumulative import time (inflated by the tracing itself; read it for ranking only).

This is a benchmark, never a timed test: the machine's load moves it by tens of milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

SNIPPET = """
import sys, time
t0 = time.perf_counter()
import rlm_toolkit
from rlm_toolkit import RLM
RLM.from_openai("gpt-4o-mini", api_key="x", base_url="http://127.0.0.1:9")
ms = (time.perf_counter() - t0) * 1000
import json
heavy = %r
print(json.dumps({"ms": ms, "modules": len(sys.modules), "heavy": [m for m in heavy if m in sys.modules]}))
"""

#: The other snippets ``--also`` times (same timing and report as :data:`SNIPPET`).
ALSO = {
    "import rlm_toolkit": "import rlm_toolkit",
    "import rlm_toolkit.testing": "import rlm_toolkit.testing",
}

_TIMED = """
import sys, time
t0 = time.perf_counter()
%s
ms = (time.perf_counter() - t0) * 1000
import json
print(json.dumps({"ms": ms, "modules": len(sys.modules), "heavy": []}))
"""

#: Modules worth knowing about when they load: SDKs, the OTel SDK's export/processor layer,
#: the stream proxies and instrumentation (loaded by the first call), and the callback machinery
#: (none of which a run without callbacks needs at construction).
HEAVY = [
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk._logs",
    "opentelemetry.sdk.resources",
    "opentelemetry.instrumentation.instrumentor",
    "packaging",
    "packaging.requirements",
    "importlib.metadata",
    "wrapt",
    "asyncio",
    "ssl",
    "rlm_toolkit.callbacks._exporter",
    "rlm_toolkit.callbacks._span_processor",
    "rlm_toolkit.callbacks._log_processor",
    "rlm_toolkit.callbacks._dispatch",
    "rlm_toolkit.callbacks._extract",
    "rlm_toolkit.genai",
    "rlm_toolkit.genai._stream",
    "rlm_toolkit.instrumentation.openai",
]


def sample(code: str | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RLM_"))}
    script = SNIPPET % (HEAVY,) if code is None else _TIMED % code
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def importtime(top: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", SNIPPET % ([],)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", type=int, default=0, metavar="N")
    parser.add_argument("--also", action="store_true", help="also time `import rlm_toolkit` and `.testing`")
    args = parser.parse_args()
    samples = []
    also: dict[str, list[float]] = {name: [] for name in ALSO} if args.also else {}
    for _ in range(args.runs):  # interleaved: each round sees the same load
        samples.append(sample())
        for name in also:
            also[name].append(float(sample(ALSO[name])["ms"]))  # type: ignore[arg-type]
    times = sorted(float(s["ms"]) for s in samples)  # type: ignore[arg-type]
    print(
        f"import rlm_toolkit + RLM.from_openai(...): median {statistics.median(times):.0f} ms "
        f"(min {times[0]:.0f}, max {times[-1]:.0f}, {args.runs} fresh interpreters; "
        f"{samples[-1]['modules']} modules in sys.modules)"
    )
    for name, ms in also.items():
        ms.sort()
        print(f"{name}: median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f})")
    loaded = set(samples[-1]["heavy"])  # type: ignore[arg-type]
    print("heavy modules loaded:    ", ", ".join(m for m in HEAVY if m in loaded) or "none")
    print("heavy modules not loaded:", ", ".join(m for m in HEAVY if m not in loaded) or "none")
    if args.importtime:
        print(f"\npython -X importtime, top {args.importtime} by cumulative us:")
        for us, name in importtime(args.importtime):
            print(f"{us:>9}  {name}")


if __name__ == "__main__":
    main()
