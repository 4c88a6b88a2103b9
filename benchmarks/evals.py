"""Eval runner scaling: N offline needle tasks at 1M characters on 1, 2 and 4 workers, on the
process pool and on a local Ray cluster (loopback only). Not a timed test: it prints numbers.

    python benchmarks/evals.py                     # 100 tasks (the issue's size)
    python benchmarks/evals.py --tasks 24 --chars 1000000 --ray

Per configuration: wall time, tasks/s, the runner's overhead per task (worker-slot time not
spent inside a task: process start, task shipping, result writing, idle waits; i.e.
wall x workers / tasks - mean task seconds) and the peak RSS of a worker process (VmHWM,
sandbox children not included). Telemetry is off in the workers (OTEL_SDK_DISABLED is not
used: the exporters are set to none) so the numbers are the runner's and the runs'.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import threading
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback-only local cluster
for var, value in (
    ("OTEL_TRACES_EXPORTER", "none"),
    ("OTEL_LOGS_EXPORTER", "none"),
    ("OTEL_METRICS_EXPORTER", "none"),
):
    os.environ[var] = value

from rlm_toolkit.evals import EvalSpec, needle_tasks, run_eval  # noqa: E402
from rlm_toolkit.testing import OFFLINE_API_KEY, OpenAIServer  # noqa: E402


def _tree() -> dict[int, tuple[int, str]]:
    procs = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs[int(stat.parent.name)] = (int(fields[1]), cmd)
    return procs


def _peak_kib(pid: int) -> int:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class WorkerMemory:
    """Samples the peak RSS of this process's worker descendants (pool or Ray workers)."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.5):
            procs = _tree()
            found = {me}
            grew = True
            while grew:
                more = {p for p, (pp, _) in procs.items() if pp in found} - found
                found |= more
                grew = bool(more)
            for pid in found - {me}:
                cmd = procs[pid][1]
                if "spawn_main" in cmd or cmd.startswith("ray::"):
                    self.peaks[pid] = max(self.peaks.get(pid, 0), _peak_kib(pid))

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(tasks: str, workers: int, ray: str | None, out_dir: str) -> dict[str, float]:
    output = os.path.join(out_dir, f"{'ray' if ray else 'pool'}-{workers}.jsonl")
    spec = EvalSpec("gpt-4o-mini", config={"max_iterations": 6})
    with WorkerMemory() as memory:
        start = time.perf_counter()
        report = run_eval(tasks, spec, output, workers=workers, ray=ray, progress=False)
        wall = time.perf_counter() - start
    n = report.ran
    seconds = [float(r["seconds"]) for r in report.rows if "seconds" in r]
    busy = [kib for kib in memory.peaks.values() if kib]
    return {
        "tasks": n,
        "wall_s": wall,
        "tasks_per_s": n / wall,
        "mean_task_s": statistics.fmean(seconds),
        "overhead_per_task_s": wall * workers / n - statistics.fmean(seconds),
        "worker_peak_mib": (max(busy) / 1024) if busy else float("nan"),
        "accuracy": report.summary.accuracy or 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--ray", action="store_true", help="also on a local Ray cluster")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        os.environ["OPENAI_API_KEY"] = OFFLINE_API_KEY
        os.environ["OPENAI_BASE_URL"] = server.base_url
        t0 = time.perf_counter()
        tasks = needle_tasks(tmp, count=args.tasks, chars=args.chars)
        print(f"{args.tasks} tasks x {args.chars:,} chars generated in {time.perf_counter() - t0:.1f} s")
        backends: list[str | None] = [None]
        if args.ray:
            import ray

            ray.init(
                address="local",
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                num_cpus=max(counts),
                log_to_driver=False,
            )
            backends.append("auto")
        try:
            print(
                f"{'backend':8} {'workers':>7} {'wall s':>8} {'tasks/s':>8} {'task s':>7} "
                f"{'overhead s':>10} {'worker MiB':>10} {'acc':>5}"
            )
            for backend in backends:
                for workers in counts:
                    m = measure(tasks, workers, backend, tmp)
                    print(
                        f"{'ray' if backend else 'pool':8} {workers:>7} {m['wall_s']:>8.1f} "
                        f"{m['tasks_per_s']:>8.2f} {m['mean_task_s']:>7.2f} "
                        f"{m['overhead_per_task_s']:>10.3f} {m['worker_peak_mib']:>10.0f} {m['accuracy']:>5.0%}",
                        flush=True,
                    )
        finally:
            if args.ray:
                ray.shutdown()


if __name__ == "__main__":
    main()
