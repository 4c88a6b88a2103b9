"""Evals: many RLM runs in parallel, on a process pool or a Ray cluster, one trace per task.

``run_eval(tasks, EvalSpec(model), "results.jsonl")`` (or the ``rlm-eval`` command) runs each
task of a JSONL task file on worker processes (``ray=`` a Ray cluster), appends one results
line per finished task, resumes from that file, and returns an :class:`EvalReport` whose
:class:`EvalSummary` has the accuracy, cost, tokens, latency and status counts. The eval is one
span; each task's ``invoke_agent`` run is the root of its own trace, linked to it, with a
``gen_ai.evaluation.result`` record of its score.
"""

from __future__ import annotations

from rlm_toolkit.evals._generate import aggregation_tasks, needle_tasks
from rlm_toolkit.evals._results import EvalSummary, ResultsFile
from rlm_toolkit.evals._runner import EvalInterrupted, EvalReport, run_eval
from rlm_toolkit.evals._scorers import contains, exact, numeric
from rlm_toolkit.evals._spec import EvalSpec
from rlm_toolkit.evals._tasks import Task, TaskFileError, load_tasks
from rlm_toolkit.evals._traces import linked_traces

__all__ = [
    "EvalInterrupted",
    "EvalReport",
    "EvalSpec",
    "EvalSummary",
    "ResultsFile",
    "Task",
    "TaskFileError",
    "aggregation_tasks",
    "contains",
    "exact",
    "linked_traces",
    "load_tasks",
    "needle_tasks",
    "numeric",
    "run_eval",
]
