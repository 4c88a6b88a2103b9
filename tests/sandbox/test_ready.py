"""ReadySandboxes keeps one fresh worker started; a worker lives as long as its sandbox, not as
long as the thread that started it; nothing is left when the process exits."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_toolkit.sandbox import ReadySandboxes, Sandbox, SandboxLimits

#: Where every uid may enter (the system's temporary directory before any test changes it).
_SHARED_TMP = tempfile.gettempdir() if os.stat(tempfile.gettempdir()).st_mode & 0o001 else "/tmp"
NAMES = "print(sorted(k for k in globals() if not k.startswith('_')))"


def _workers_in(directory: Path) -> list[int]:
    """Live processes whose working directory is under ``directory`` (a worker's is its scratch dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(directory)):
            found.append(int(entry))
    return found


@pytest.fixture
def tmp_scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own temporary directory, one the worker's uid may enter (as root the
    sandbox would otherwise put scratch dirs in the shared /tmp, out of this test's sight)."""
    root = Path(tempfile.mkdtemp(prefix="rlm-ready-test-", dir=_SHARED_TMP))
    root.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_take_gives_started_sandboxes_that_ran_nothing_and_never_the_same_twice(tmp_scratch: Path) -> None:
    fresh = Sandbox()
    try:
        names = fresh.execute(NAMES).output
    finally:
        fresh.close()
    with ReadySandboxes(SandboxLimits(cpu_seconds=5.0)) as ready:
        assert ready.limits == SandboxLimits(cpu_seconds=5.0)
        first = ready.take()
        try:
            assert first.level != "not started"
            assert first.execute(NAMES).output == names
            assert first.execute("mark = 1\nprint('mark' in globals())").output.strip() == "True"
        finally:
            first.close()
        second = ready.take()
        try:
            assert second is not first
            assert second.execute(NAMES).output == names  # no 'mark': a worker that ran code is gone
        finally:
            second.close()
    assert _workers_in(tmp_scratch) == []
    assert glob.glob(str(tmp_scratch / "rlm-sandbox-*")) == []
    with pytest.raises(RuntimeError, match="closed"):
        ready.take()


def test_close_while_the_kept_worker_starts_leaves_nothing(tmp_scratch: Path) -> None:
    for _ in range(3):
        ReadySandboxes().close()  # at once: the kept sandbox is still starting
        assert _workers_in(tmp_scratch) == []
        assert glob.glob(str(tmp_scratch / "rlm-sandbox-*")) == []
    with pytest.raises(TypeError, match="SandboxLimits"):
        ReadySandboxes(limits={"cpu_seconds": 1})  # type: ignore[arg-type]


def test_a_worker_outlives_the_thread_that_started_it(tmp_scratch: Path) -> None:
    # The worker's parent-death signal follows the thread that forked it; workers are forked by
    # one process-long thread, so a sandbox started by a thread that has ended still works.
    box = Sandbox()
    try:
        starter = threading.Thread(target=box.start)
        starter.start()
        starter.join()
        box.execute("x = 41")
        result = box.execute("print(x + 1)")
        assert (result.output.strip(), result.error, result.killed) == ("42", None, None)
    finally:
        box.close()


def test_close_from_another_thread_while_it_starts_leaves_nothing(tmp_scratch: Path) -> None:
    for _ in range(3):
        box = Sandbox()
        starter = threading.Thread(target=lambda b=box: _start_quietly(b))
        starter.start()
        box.close()
        starter.join(30)
        assert not starter.is_alive()
        assert _workers_in(tmp_scratch) == []
        assert glob.glob(str(tmp_scratch / "rlm-sandbox-*")) == []


def _start_quietly(box: Sandbox) -> None:
    try:
        box.start()
    except RuntimeError as exc:  # closed before or while it started: the expected outcomes
        assert "closed" in str(exc) or "could not start" in str(exc)


def test_no_worker_or_scratch_dir_is_left_when_the_process_exits(tmp_scratch: Path) -> None:
    script = textwrap.dedent(
        """
        from rlm_toolkit.sandbox import ReadySandboxes
        ready = ReadySandboxes()
        taken = ready.take()  # started, never closed
        taken.execute("x = 1")
        print("ok", flush=True)
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp_scratch)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    assert _workers_in(tmp_scratch) == []
    assert glob.glob(str(tmp_scratch / "rlm-sandbox-*")) == []


def test_scratch_dirs_are_made_where_this_module_looks(tmp_scratch: Path) -> None:
    # Guards the checks above: were the scratch dirs made elsewhere, "none left here" would be void.
    box = Sandbox()
    try:
        box.start()
        assert len(glob.glob(str(tmp_scratch / "rlm-sandbox-*"))) == 1
        assert len(_workers_in(tmp_scratch)) == 1
    finally:
        box.close()
    assert _workers_in(tmp_scratch) == []
