"""The corpus claims that differ when the host is an ordinary user (the worker then keeps the
host's uid, so file permissions and signal rules no longer separate them: Landlock and seccomp
must), and what each missing kernel layer lets through (the fallbacks SECURITY.md describes).

The suite runs as root on our machines; this test re-runs the scenarios in a host process that
starts as uid/gid 65534 (unprivileged_host.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_toolkit.sandbox import Sandbox

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
NOBODY = 65534


def _python_for_nobody() -> str | None:
    """A Python whose stdlib uid 65534 can read (ours may live under root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [candidate, "-I", "-c", "import json, ctypes"],
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    return None


def readable_copy(destination: Path) -> tuple[Path, Path]:
    """The package and the host script copied under ``destination`` (0755 dirs, 0644 files): the
    checkout may sit where uid 65534 cannot enter (root's home, a 0700 temp dir), and the
    unprivileged host must still import what is being tested. Returns (src dir, script)."""
    os.chmod(destination, 0o755)
    src = destination / "src"
    shutil.copytree(SRC / "rlm_toolkit", src / "rlm_toolkit", ignore=shutil.ignore_patterns("__pycache__"))
    script = destination / "unprivileged_host.py"
    shutil.copyfile(HERE / "unprivileged_host.py", script)
    for path in (destination, *destination.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return src, script


@pytest.fixture(scope="module")
def readable() -> Iterator[tuple[Path, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="rlm-unpriv-src-"))
    try:
        yield readable_copy(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def report(readable: tuple[Path, Path]) -> dict[str, dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("the suite already runs unprivileged: test_adversarial.py is the unprivileged run")
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python whose stdlib uid 65534 can read")
    src, script = readable
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        proc = subprocess.run(
            [python, "-I", str(script), str(src), str(listener.getsockname()[1])],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        listener.setblocking(False)
        listener.accept()[0].close()  # the one connection: the rlimits-only run (no network layer)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no sandbox with a kernel layer reached the listener
    finally:
        listener.close()
    result: dict[str, dict[str, str]] = json.loads(proc.stdout)
    return result


def test_the_host_really_was_unprivileged(report: dict[str, dict[str, str]]) -> None:
    assert report["host"]["uid"] == str(NOBODY)
    assert report["full"]["uid"] == f"ok:{NOBODY}"  # the worker shares the host's uid


def test_full_sandbox_holds_with_an_unprivileged_host(report: dict[str, dict[str, str]]) -> None:
    full = report["full"]
    assert full["level"] == "landlock+seccomp+rlimits"
    assert full == {
        "level": "landlock+seccomp+rlimits",
        "uid": f"ok:{NOBODY}",
        "read_host_file": "PermissionError",  # same uid: only Landlock refuses it
        "parent_environ": "PermissionError",
        "signal_parent": "PermissionError",  # same uid: seccomp (and Landlock's signal scope)
        "fork": "PermissionError",
        "subprocess": "PermissionError",
        "thread": "RuntimeError",
        "connect": "PermissionError",
        "write_outside": "PermissionError",
        # issue #21 items 4, 5, 7: the host's scheduling and its files' metadata are out of reach
        # (the host checks its own state is unchanged), and no watches
        "nice_parent": "PermissionError",
        "prio_user": "PermissionError",
        "affinity_parent": "PermissionError",
        "sched_idle_parent": "PermissionError",
        "ioprio_parent": "ok:-1 1",
        "chmod_secret": "PermissionError",
        "chmod_home": "PermissionError",
        "chown_secret": "PermissionError",
        "utime_secret": "PermissionError",
        "setxattr_secret": "PermissionError",
        "inotify": "ok:-1 1",
    }


def test_without_landlock_the_worker_reads_what_its_uid_can(report: dict[str, dict[str, str]]) -> None:
    layer = report["no_landlock"]
    assert layer["level"] == "seccomp+rlimits"
    assert layer["read_host_file"] == "ok:sk-test-unprivileged-host-secret"
    assert layer["write_outside"] == "ok:1 (file written)"
    # seccomp alone still stops processes, sockets and signals to the host.
    assert (layer["fork"], layer["connect"], layer["signal_parent"]) == ("PermissionError",) * 3


def test_without_seccomp_landlock_and_rlimits_still_hold(report: dict[str, dict[str, str]]) -> None:
    layer = report["no_seccomp"]
    assert layer["level"] == "landlock+rlimits"
    assert layer["read_host_file"] == "PermissionError"
    assert layer["connect"] == "PermissionError"  # Landlock ABI >= 4: no TCP connect
    assert layer["signal_parent"] == "PermissionError"  # Landlock ABI >= 6: signals scoped
    assert layer["fork"] == "BlockingIOError"  # RLIMIT_NPROC=0 binds an unprivileged uid
    assert layer["thread"] == "RuntimeError"


def test_rlimits_alone_only_limit_resources(report: dict[str, dict[str, str]]) -> None:
    layer = report["rlimits_only"]
    assert layer["level"] == "rlimits"
    assert layer["read_host_file"] == "ok:sk-test-unprivileged-host-secret"
    assert layer["parent_environ"].startswith("ok:")
    assert layer["signal_parent"] == "ok:sent"
    assert layer["fork"] == "BlockingIOError"
    assert layer["connect"].startswith("ok:<socket")


def test_these_tests_pass_from_a_checkout_uid_65534_cannot_enter(tmp_path: Path) -> None:
    """Issue #22 item 17: a clone in a 0700 directory (root's home, a private temp dir) used to
    fail every test above, since the unprivileged host could not open its own script or import
    the package. This copies the checkout's relevant parts under a 0700 dir and runs this module
    from there (all but this test)."""
    if os.geteuid() != 0:
        pytest.skip("runs the unprivileged-host tests, which need root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    root = HERE.parents[1]
    checkout = private / "repo"
    checkout.mkdir()
    shutil.copyfile(root / "pyproject.toml", checkout / "pyproject.toml")
    shutil.copytree(
        SRC / "rlm_toolkit", checkout / "src" / "rlm_toolkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    (checkout / "tests").mkdir()
    shutil.copyfile(root / "tests" / "conftest.py", checkout / "tests" / "conftest.py")
    shutil.copytree(HERE, checkout / "tests" / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    probe = subprocess.run(
        ["/bin/test", "-x", str(checkout)], user=NOBODY, group=NOBODY, extra_groups=[], check=False
    )
    assert probe.returncode != 0  # really out of uid 65534's reach
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sandbox/test_unprivileged_host.py",
            "-k",
            "not checkout_uid_65534_cannot_enter",
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and not {"skipped", "failed", "error"} & set(summary.split()), summary


def test_a_tmpdir_the_worker_cannot_enter_is_not_where_its_scratch_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root host whose TMPDIR sits under a directory only root may enter (/root/tmp, a 0700
    dir): the worker, dropped to uid 65534, could not open its own files by their path."""
    if os.geteuid() != 0:
        pytest.skip("only a root host drops the worker's uid")
    private = tmp_path / "private"
    (private / "tmp").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private / "tmp"))
    with Sandbox() as box:
        result = box.execute("open('notes.txt', 'w').write('kept')\nprint(open('notes.txt').read())")
        assert (result.error, result.output) == (None, "kept\n")
        assert box._res.scratch is not None and not box._res.scratch.startswith(str(private))
