"""``Sandbox``: the host side of the REPL worker (lifecycle, limits, sub-call servicing)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from rlm_toolkit.sandbox import _context_file
from rlm_toolkit.sandbox import _protocol as proto
from rlm_toolkit.sandbox._load_failure import load_failure
from rlm_toolkit.sandbox._process import MAX_MESSAGE, CpuExceeded, WorkerGone, WorkerProcess
from rlm_toolkit.sandbox._scratch import UNPRIVILEGED_ID, make_scratch
from rlm_toolkit.sandbox._spawner import spawn
from rlm_toolkit.sandbox._types import ExecutionResult, QueryHandler, SandboxLimits

#: Seconds a worker may take to start (imports, confinement) or to load a context.
START_TIMEOUT_S = 30.0
#: CPU seconds an idle worker may use between executions (it should use none).
IDLE_CPU_S = 0.5
_LOST = "the REPL was restarted, its variables are lost (the context is reloaded)"
_CLOSED = "killed: the sandbox was closed during the execution"


class _Resources:
    """What must be released at close() or at interpreter exit (held apart from the Sandbox so
    the finalizer does not keep the Sandbox alive)."""

    def __init__(self) -> None:
        self.worker: WorkerProcess | None = None
        self.scratch: str | None = None

    def kill_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()

    def release(self) -> None:
        self.kill_worker()
        scratch, self.scratch = self.scratch, None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _seconds(value: float) -> str:
    return f"{value:g}"


class Sandbox:
    """A restricted Python REPL in a separate process, driven from the host.

    ``execute()`` runs code in a persistent namespace and services the code's
    ``llm_query``/``rlm_query`` calls by calling the handler on the calling thread. Not
    thread-safe: one thread drives one sandbox. ``level`` names the isolation layers reached
    (``"not started"`` until the worker first starts).
    """

    def __init__(self, *, limits: SandboxLimits | None = None) -> None:
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise TypeError(f"Sandbox(limits=...) takes a SandboxLimits, got {type(limits).__name__}")
        self.limits = limits or SandboxLimits()
        self.level = "not started"
        self._res = _Resources()
        self._context: tuple[str, bytes] | None = None  # (kind, encoded) for _context_file
        self._closed = False
        self._busy = False  # an execute() is running (close() from another thread then defers)
        self._lock = threading.Lock()
        self._disable: tuple[str, ...] = ()  # layers to leave out: for tests of the fallbacks only
        self._idle_cpu = float("inf")  # the worker's CPU time when it last finished an execution
        self._finalizer = weakref.finalize(self, self._res.release)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the worker and wait until it is confined (idempotent). Raises ``RuntimeError``
        when the worker cannot start, and after ``close()``."""
        with self._driving():
            if self._res.worker is None:
                self._spawn()

    @contextlib.contextmanager
    def _driving(self) -> Iterator[None]:
        """Marks the sandbox busy while this thread starts it or loads a context (unless
        execute() already did): a close() from another thread -- a cancelled run, the exit
        hooks -- then only kills the worker, and this thread releases the rest when it is done,
        so nothing is freed under it and nothing it makes after the close is left behind."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this Sandbox is closed; create a new one")
            owner, self._busy = not self._busy, True
        try:
            yield
        finally:
            if owner:
                with self._lock:
                    self._busy = False
                    closed = self._closed
                if closed:
                    self._res.release()  # not the finalizer: exit hooks may have spent it already

    def _spawn(self) -> None:
        if self._res.scratch is None:
            self._res.scratch = make_scratch()
        # On the process-long spawner thread: the worker's parent-death signal follows the thread
        # that forked it (see _spawner).
        worker = spawn(functools.partial(WorkerProcess, self._res.scratch), WorkerProcess.kill)
        with self._lock:
            self._res.worker = worker
            closed = self._closed
        try:
            if closed:
                raise WorkerGone("the sandbox was closed while it started")
            drop_to = UNPRIVILEGED_ID if os.geteuid() == 0 else None
            init = {
                "op": proto.INIT,
                "limits": dataclasses.asdict(self.limits),
                "scratch": self._res.scratch,
                "drop_to": drop_to,
                "disable": list(self._disable),
            }
            deadline = time.monotonic() + START_TIMEOUT_S
            worker.send(proto.encode(init), deadline)
            ready = worker.recv_message(deadline)
            if ready.get("op") != proto.READY:
                raise RuntimeError(f"the sandbox worker could not start: {ready.get('error', ready)}")
            self.level = str(ready.get("level"))
            if self._context is not None:
                self._load(worker, self._context)
        except (WorkerGone, TimeoutError, ValueError, OverflowError) as exc:
            self._res.kill_worker()
            raise RuntimeError(f"the sandbox worker could not start: {exc}") from None
        except BaseException:
            self._res.kill_worker()
            raise

    def close(self) -> None:
        """Kill the worker's process group and remove the scratch dir; idempotent.

        May be called from another thread while ``execute()`` runs (e.g. to cancel a run): the
        worker is killed at once, that ``execute()`` returns ``killed="crash"``, and the thread
        that ran it releases the rest.
        """
        with self._lock:
            self._closed = True
            busy = self._busy
            if busy and self._res.worker is not None:
                self._res.worker.signal_group()
        if not busy:
            self._finalizer()

    def kill(self) -> None:
        """Kill the worker's process group and remove the scratch dir now; idempotent.

        Unlike :meth:`close`, this does not leave the cleanup to a thread blocked in
        ``execute()`` (that thread may never run again: the process is exiting, or it is
        stuck). Safe from any thread; the Sandbox is closed after.
        """
        self.close()
        self._finalizer()  # weakref.finalize: releases at most once

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- context -----------------------------------------------------------------------------
    def set_context(self, context: str | list[str] | dict[str, Any]) -> None:
        """Make ``context`` the REPL variable ``context`` (kept and reloaded after a restart).

        Raises ``TypeError`` for a value that is not JSON data, ``RuntimeError`` when the worker
        dies loading it (e.g. the context does not fit ``memory_bytes``).
        """
        if not isinstance(context, (str, list, dict)):
            raise TypeError(f"set_context() takes a str, list or dict, got {type(context).__name__}")
        try:
            frames = _context_file.encode(context)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"set_context(): the context must be JSON data: {exc}") from None
        self._context = frames
        with self._driving():
            if self._res.worker is None:
                self._spawn()  # loads self._context
                return
            worker = self._res.worker
            try:
                self._load(worker, frames)
            except (WorkerGone, TimeoutError, ValueError, OverflowError) as exc:
                message = load_failure(worker, exc, len(frames[1]) >> 20, self.limits, START_TIMEOUT_S)
                self._res.kill_worker()
                self._context = None
                raise RuntimeError(message) from None

    def _load(self, worker: WorkerProcess, frames: tuple[str, bytes]) -> None:
        # Through a file in the worker's own scratch dir, not the pipe: 10M characters cost a
        # write and a read instead of 10 MiB of framed pipe traffic (and JSON for a str).
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._res.scratch is not None
        worker.send(proto.encode(_context_file.write(self._res.scratch, *frames)), deadline)
        reply = worker.recv_message(deadline)
        if reply.get("op") != proto.LOADED:
            raise ValueError(f"unexpected reply to a context: {reply.get('op')!r}")
        self._idle_cpu = worker.cpu_seconds()  # decoding a big context is not code running on

    # -- execution ---------------------------------------------------------------------------
    def execute(self, code: str, handler: QueryHandler | None = None) -> ExecutionResult:
        """Run ``code`` in the persistent namespace; never raises for anything the code does.

        Blocks until the code finishes or a limit hits, calling ``handler`` on this thread for
        each sub-call. Raises ``TypeError`` if ``code`` is not a str, ``RuntimeError`` if the
        worker cannot start.
        """
        if not isinstance(code, str):
            raise TypeError(f"execute() takes the code as a str, got {type(code).__name__}")
        with self._lock:
            if self._busy:
                raise RuntimeError(
                    "execute() is already running on this Sandbox (one thread drives one sandbox)"
                )
            self._busy = True
        try:
            self.start()
            worker = self._res.worker
            assert worker is not None
            return _Execution(self, worker, handler).run(code)
        finally:
            with self._lock:
                self._busy = False
                closed = self._closed
            if closed:
                self._finalizer()

    def _killed(self) -> None:
        self._res.kill_worker()
        self._idle_cpu = float("inf")


class _OutputFlood(Exception):
    """More output frames than an honest worker sends under output_chars (forged frames)."""


class _Execution:
    """One execute() call: the message loop, the budgets, and the result."""

    def __init__(self, box: Sandbox, worker: WorkerProcess, handler: QueryHandler | None) -> None:
        self.box, self.worker, self.handler = box, worker, handler
        self.limits = box.limits
        self.output: list[str] = []
        self.kept = 0
        self.dropped = 0
        self.queries = 0
        self.refused = False
        self.started = time.perf_counter()
        self.out_bytes = 0  # output frames received this execution (bounded: proto.out_budget)
        self.out_budget = proto.out_budget(self.limits.output_chars)

    def run(self, code: str) -> ExecutionResult:
        limits, worker = self.limits, self.worker
        wall_left = limits.wall_seconds
        cpu_now = worker.cpu_seconds()
        cpu_deadline = cpu_now + limits.cpu_seconds
        # Only code that forged the end of its execution can run or write between executions.
        if cpu_now - self.box._idle_cpu > IDLE_CPU_S:
            return self._kill("cpu", "killed: the previous code kept running after its execution ended")
        if worker.pending():
            return self._kill("output", "killed: the previous code kept writing after its execution ended")
        try:
            worker.send(proto.encode({"op": proto.EXEC, "code": code}), time.monotonic() + wall_left)
            while True:
                waited = time.monotonic()
                body = worker.recv(waited + wall_left, cpu_deadline, self._early)
                if not body.startswith(proto.OP_PREFIX):
                    raise ValueError("a message that does not start with its op")
                if body.startswith(proto.OUT_PREFIX):
                    self._count_out(len(body))
                message = proto.decode(body)
                del body  # the decoded message is all that is kept
                op = message["op"]
                wall_left -= time.monotonic() - waited
                if op == proto.OUT:
                    self._out(message.get("text"))
                elif op == proto.QUERY:
                    reply = self._serve(message)
                    worker.send(proto.encode(reply), time.monotonic() + max(wall_left, 0.0))
                elif op == proto.DONE:
                    result = self._done(message)
                    if result.killed is None:
                        self.box._idle_cpu = worker.cpu_seconds()
                    return result
                else:
                    raise ValueError(f"unexpected message {op!r}")
        except TimeoutError:
            return self._kill("wall", f"killed: wall time limit ({_seconds(limits.wall_seconds)} s)")
        except CpuExceeded:
            return self._kill("cpu", f"killed: CPU time limit ({_seconds(limits.cpu_seconds)} s)")
        except _OutputFlood:
            return self._kill("output", "killed: the worker sent more output than output_chars allows")
        except OverflowError:
            return self._kill("output", f"killed: the code sent more than {MAX_MESSAGE >> 20} MiB at once")
        except WorkerGone:
            return self._died(cpu_deadline)
        except (ValueError, KeyError, TypeError) as exc:
            return self._kill("crash", f"killed: the worker broke the protocol ({exc})")
        except BaseException:
            self.box._killed()  # e.g. KeyboardInterrupt in the handler: never leave a busy worker
            raise

    def _early(self, size: int, start: bytes) -> None:
        """Refuse an output flood from its first bytes, before the host buffers it."""
        if start == proto.OUT_PREFIX and self.out_bytes + size > self.out_budget:
            raise _OutputFlood

    def _count_out(self, size: int) -> None:
        self.out_bytes += size
        if self.out_bytes > self.out_budget:
            raise _OutputFlood

    def _out(self, text: Any) -> None:
        if not isinstance(text, str):
            raise ValueError("output is not text")
        room = self.limits.output_chars - self.kept
        piece = text[: max(room, 0)]
        self.output.append(piece)
        self.kept += len(piece)
        self.dropped += len(text) - len(piece)

    def _text(self, dropped: int = 0) -> str:
        out = "".join(self.output)
        dropped += self.dropped
        if dropped:
            out += (
                f"\n[... {dropped} more characters of output cut (output_chars={self.limits.output_chars})]"
            )
        return out

    def _serve(self, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("kind")
        if kind == "llm":
            prompts, model = message.get("prompts"), message.get("model")
            if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                return {"op": proto.REPLY, "ok": False, "error": "llm_query: prompts must be strings"}
            if model is not None and not isinstance(model, str):
                return {"op": proto.REPLY, "ok": False, "error": "llm_query: model must be a string or None"}
            count = len(prompts)
        elif kind == "rlm":
            count = 1
            if not isinstance(message.get("prompt"), str):
                return {"op": proto.REPLY, "ok": False, "error": "rlm_query: prompt must be a string"}
        else:
            return {"op": proto.REPLY, "ok": False, "error": f"unknown sub-call {kind!r}"}
        if self.queries + count > self.limits.max_queries:
            self.refused = True
            return {"op": proto.REPLY, "ok": False, "error": self._limit_message()}
        if self.handler is None:
            return {
                "op": proto.REPLY,
                "ok": False,
                "error": "llm_query/rlm_query are not available: no query handler",
            }
        self.queries += count
        try:
            if kind == "llm":
                assert isinstance(prompts, list)
                value: Any = self.handler.llm_query(prompts, model)
                if (
                    not isinstance(value, list)
                    or len(value) != count
                    or not all(isinstance(v, str) for v in value)
                ):
                    raise TypeError(f"the query handler returned {type(value).__name__}, not {count} strings")
            else:
                value = self.handler.rlm_query(message["prompt"], message.get("context"))
                if not isinstance(value, str):
                    raise TypeError(f"the query handler returned {type(value).__name__}, not a string")
        except Exception as exc:
            return {"op": proto.REPLY, "ok": False, "error": str(exc) or type(exc).__name__}
        return {"op": proto.REPLY, "ok": True, "value": value}

    def _limit_message(self) -> str:
        return (
            f"sub-call limit reached: at most {self.limits.max_queries} llm_query/rlm_query calls"
            " per execution (SandboxLimits.max_queries)"
        )

    def _done(self, message: dict[str, Any]) -> ExecutionResult:
        error, final, answer = message.get("error"), message.get("final"), message.get("answer")
        dropped = message.get("dropped", 0)
        if message.get("memory"):
            mib = self.limits.memory_bytes >> 20
            return self._kill("memory", f"MemoryError: the code exceeded the memory limit ({mib} MiB)")
        if error is None and self.refused:
            error = self._limit_message()
        if not (
            (error is None or isinstance(error, str))
            and (final is None or isinstance(final, str))
            and (answer is None or (isinstance(answer, dict) and set(answer) == {"content", "ready"}))
            and isinstance(dropped, int)
        ):
            raise ValueError("malformed result")
        return self._result(error=error, killed=None, final=final, answer=answer, dropped=max(dropped, 0))

    def _died(self, cpu_deadline: float) -> ExecutionResult:
        used = self.worker.cpu_seconds()  # before reaping: a zombie still shows its CPU time
        status = self.worker.exit_status()
        if self.box._closed:
            return self._kill("crash", _CLOSED, lost=False)
        if status == 3:  # the worker's EXIT_MEMORY
            mib = self.limits.memory_bytes >> 20
            return self._kill("memory", f"MemoryError: the code exceeded the memory limit ({mib} MiB)")
        if status == -signal.SIGXCPU or (status == -signal.SIGKILL and used >= cpu_deadline - 1):
            return self._kill("cpu", f"killed: CPU time limit ({_seconds(self.limits.cpu_seconds)} s)")
        how = (
            "still running"
            if status is None
            else (f"signal {-status}" if status < 0 else f"exit status {status}")
        )
        return self._kill("crash", f"killed: the worker died ({how})")

    def _kill(self, reason: str, error: str, *, lost: bool = True) -> ExecutionResult:
        if self.box._closed:
            # A close() from another thread explains whatever was seen: the dead worker's end of
            # file as "pending output", a cut frame, a broken pipe. Report the cancellation.
            reason, error, lost = "crash", _CLOSED, False
        self.box._killed()
        return self._result(
            error=f"{error}; {_LOST}" if lost else error, killed=reason, final=None, answer=None
        )

    def _result(
        self, *, error: str | None, killed: str | None, final: str | None, answer: Any, dropped: int = 0
    ) -> ExecutionResult:
        return ExecutionResult(
            output=self._text(dropped),
            error=error,
            killed=killed,
            final=final,
            answer=answer,
            duration_s=time.perf_counter() - self.started,
            queries=self.queries,
        )
