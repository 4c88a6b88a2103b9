"""The corpus claims that differ when the host is an ordinary user (the worker then keeps the
host's uid, so file permissions and signal rules no longer separate them: Landlock and seccomp
must), and what each missing kernel layer lets through (the fallbacks SECURITY.md describes).

The suite runs as root on our machines; this test re-runs the scenarios in a host process that
starts as uid/gid 65534 (unprivileged_host.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def report() -> dict[str, dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("the suite already runs unprivileged: test_adversarial.py is the unprivileged run")
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python whose stdlib uid 65534 can read")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        proc = subprocess.run(
            [python, "-I", str(HERE / "unprivileged_host.py"), str(SRC), str(listener.getsockname()[1])],
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
