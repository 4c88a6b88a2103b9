"""The host's handle on one worker process: spawn, framed I/O with deadlines, CPU, kill.

Everything read from the worker is untrusted (hostile code can write to its end of the pipe):
frames are capped in size, reads and writes never block past a deadline, so a worker that
floods, stalls or stops reading cannot hang or exhaust the host.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlm_toolkit.sandbox import _protocol as proto

WORKER = Path(__file__).with_name("_worker.py")
#: Largest message the host accepts from a worker (a bigger one kills the worker: "output").
MAX_MESSAGE = 64 << 20
#: How often the host looks at the worker's CPU time while it waits.
CPU_POLL_S = 0.05
_F_SETPIPE_SZ = 1031
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerGone(Exception):
    """The worker closed its pipe or died."""


class CpuExceeded(Exception):
    """The worker's CPU time passed the deadline the host was waiting with."""


def _widen(fd: int) -> None:
    # 1 MiB pipes move a 10M-character context in few wake-ups; the default size works too, so
    # a platform without fcntl (start() refuses there anyway) or a refused resize changes nothing.
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, proto.CHUNK)


class WorkerProcess:
    def __init__(self, scratch: str) -> None:
        if os.name != "posix":
            raise RuntimeError("the REPL sandbox needs a POSIX system (Linux for its kernel layers)")
        host_r, child_w = os.pipe()
        child_r, host_w = os.pipe()
        for fd in (host_r, host_w):
            _widen(fd)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(WORKER), str(child_r), str(child_w)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(child_r, child_w),
                close_fds=True,
                start_new_session=True,  # its own process group: one killpg ends everything
                env={},
                cwd=scratch,
            )
        finally:
            os.close(child_r)
            os.close(child_w)
        self.pid = self.proc.pid
        self._r, self._w = host_r, host_w
        os.set_blocking(host_r, False)
        os.set_blocking(host_w, False)
        self._buffer = proto.FrameBuffer(MAX_MESSAGE)
        self._poll = select.poll()
        self._poll.register(host_r, select.POLLIN)
        self.alive = True

    # -- I/O ---------------------------------------------------------------------------------
    def send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._w, view)
            except BlockingIOError:
                written = 0
            except (BrokenPipeError, OSError) as exc:
                raise WorkerGone(str(exc)) from None
            view = view[written:]
            if view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the worker stopped reading")
                select.select([], [self._w], [], left)

    def recv(
        self,
        deadline: float,
        cpu_deadline: float | None = None,
        early: Callable[[int, bytes], None] | None = None,
    ) -> bytes:
        """The next frame; ``TimeoutError`` at the wall deadline, ``CpuExceeded`` when the
        worker's CPU time passes ``cpu_deadline``, ``WorkerGone`` at EOF. ``early(size, first
        bytes)`` sees each frame's start before the rest is buffered and may raise to refuse it."""
        while True:
            body = self._buffer.next_frame()
            if body is not None:
                return body
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("wall")
            if cpu_deadline is not None and self.cpu_seconds() > cpu_deadline:
                raise CpuExceeded(cpu_deadline)
            wait = min(left, CPU_POLL_S) if cpu_deadline is not None else left
            if not self._poll.poll(math.ceil(wait * 1000)):
                continue
            try:
                data = os.read(self._r, 1 << 20)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise WorkerGone(str(exc)) from None
            if not data:
                raise WorkerGone("EOF")
            self._buffer.feed(data)
            head = self._buffer.head(len(proto.OUT_PREFIX)) if early is not None else None
            if early is not None and head is not None:
                early(*head)

    def pending(self) -> bool:
        """Whether the worker sent anything not yet consumed (an idle worker sends nothing)."""
        return self._buffer.has_data() or bool(self._poll.poll(0))

    def recv_message(self, deadline: float) -> dict[str, Any]:
        return proto.decode(self.recv(deadline))

    # -- CPU ---------------------------------------------------------------------------------
    def cpu_seconds(self) -> float:
        """User+system CPU time of the worker so far (0 when it is gone)."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    # -- end ---------------------------------------------------------------------------------
    def exit_status(self, timeout: float = 2.0) -> int | None:
        """Wait briefly for the worker to exit: its returncode (negative: killed by signal)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self) -> None:
        """SIGKILL the worker's process group, leaving reaping and the fds to :meth:`kill`
        (safe from another thread while one is blocked reading this worker)."""
        if self.alive:
            # The group may already be gone (the worker died first): nothing left to kill.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """Kill the worker's whole process group and reap it; idempotent."""
        if not self.alive:
            return
        self.signal_group()
        self.alive = False
        with contextlib.suppress(OSError):  # already reaped: wait() below returns at once
            self.proc.kill()
        self.proc.wait()
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):  # closed already (close() is idempotent)
                os.close(fd)
