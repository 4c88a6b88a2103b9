"""Run 20 offline eval tasks on the process pool, print the results table and the eval's traces.

    python examples/eval_needles.py                  # needles in 100k characters, offline, no key
    python examples/eval_needles.py --kind oolong    # OOLONG-style: count labelled records
    OPENAI_API_KEY=sk-... python examples/eval_needles.py --model gpt-4o-mini

The same as the command line:

    rlm-eval generate niah evals-demo --count 20 --chars 100000
    rlm-eval evals-demo/niah.jsonl -j 2

Rerun it after Ctrl-C: finished tasks are skipped (the results file is the checkpoint). Each
task's run is its own trace, linked to the eval's span; with no OTEL_* exporter set they all go
to evals-demo/<kind>.traces.jsonl, and the end of the output lists the eval span and its task
traces from that file.
"""

from __future__ import annotations

import argparse
import os

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from rich.console import Console

from rlm_toolkit.evals import EvalSpec, aggregation_tasks, linked_traces, needle_tasks, run_eval
from rlm_toolkit.exporters import JSONLSpanExporter, read_spans_jsonl
from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.testing import offline_if_no_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("niah", "oolong"), default="niah")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--dir", default="evals-demo")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chars", type=int, default=100_000, help="niah: characters per context")
    args = parser.parse_args()

    offline_if_no_key()  # no OPENAI_API_KEY: workers use the offline server (they inherit the env)
    if args.kind == "niah":
        tasks = needle_tasks(args.dir, count=20, chars=args.chars)
    else:
        tasks = aggregation_tasks(args.dir, count=20, records=1_000)
    traces = os.path.join(args.dir, f"{args.kind}.traces.jsonl")
    provider = None  # with OTEL_* set (e.g. under rlm-instrument), the global providers
    if not any(k.startswith("OTEL_") for k in os.environ):
        # The workers read these (as rlm-instrument does); this process writes the eval span.
        os.environ.update(
            RLM_INSTRUMENT_JSONL=traces,
            OTEL_TRACES_EXPORTER="jsonl",
            OTEL_LOGS_EXPORTER="jsonl",
            OTEL_METRICS_EXPORTER="none",
        )
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(traces)))
    try:
        report = run_eval(
            tasks,
            EvalSpec(args.model, config={"max_iterations": 6}),
            os.path.join(args.dir, f"{args.kind}.results.jsonl"),
            workers=args.workers,
            name=f"example-{args.kind}",
            handler=TelemetryHandler(tracer_provider=provider) if provider is not None else None,
        )
    finally:
        if provider is not None:
            provider.shutdown()
    print(f"ran {report.ran} tasks now, {report.skipped} were already done")
    Console().print(report.summary.table())
    if os.path.exists(traces):
        for (trace_id, span_id), linked in linked_traces(read_spans_jsonl(traces)).items():
            print(f"eval span {trace_id}/{span_id}: {len(linked)} task traces linked ({traces})")


if __name__ == "__main__":
    main()
