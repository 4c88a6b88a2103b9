"""Run 20 needle-in-a-haystack tasks on the process pool and print the results table.

    python examples/eval_needles.py            # offline: the bundled model server, no key
    OPENAI_API_KEY=sk-... python examples/eval_needles.py --model gpt-4o-mini

The same as the command line:

    rlm-eval generate niah evals-demo --count 20 --chars 100000
    rlm-eval evals-demo/niah.jsonl -j 2

Rerun it after Ctrl-C: finished tasks are skipped (the results file is the checkpoint).
Each task's run is its own trace, linked to the eval's span; with no OTEL_* settings they go to
evals-demo/niah.traces.jsonl.
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console

from rlm_toolkit.evals import EvalSpec, needle_tasks, run_eval
from rlm_toolkit.testing import offline_if_no_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--dir", default="evals-demo")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    offline_if_no_key()  # no OPENAI_API_KEY: workers use the offline server (they inherit the env)
    tasks = needle_tasks(args.dir, count=20, chars=100_000)
    report = run_eval(
        tasks,
        EvalSpec(args.model, config={"max_iterations": 6}),
        os.path.join(args.dir, "niah.results.jsonl"),
        workers=args.workers,
    )
    print(f"ran {report.ran} tasks now, {report.skipped} were already done")
    Console().print(report.summary.table())


if __name__ == "__main__":
    main()
