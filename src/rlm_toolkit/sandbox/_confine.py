"""Confine the worker process before it runs any code (runs in the worker, stdlib only).

Layers, strongest last, each applied when the kernel offers it; the names of the layers that
took effect make up ``Sandbox.level``:

* ``rlimits``: address space, file size, open files, no core dumps, and no new processes
  (``RLIMIT_NPROC=0``, which binds unprivileged uids only).
* ``uid``: a worker started as root drops to an unprivileged uid/gid (65534) with no
  supplementary groups, so file permissions and signal rules apply to it.
* ``nnp``: ``PR_SET_NO_NEW_PRIVS`` (no privilege gain through exec), and the parent-death signal
  (the worker dies with the host).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int


def prctl(option: int, arg: int = 0) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def set_rlimits(limits: dict[str, Any]) -> None:
    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 64)
    cap(resource.RLIMIT_NPROC, 0)
    # Last: everything the worker needs is loaded by now.
    cap(resource.RLIMIT_AS, int(limits["memory_bytes"]))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise PermissionError("could not drop to an unprivileged uid")


def confine(init: dict[str, Any]) -> str:
    """Apply every available layer; the level reached, e.g. ``"uid+nnp+rlimits"``."""
    layers: list[str] = []
    parent = os.getppid()
    os.chdir(init["scratch"])
    drop_to = init.get("drop_to")
    if drop_to is not None and os.geteuid() == 0:
        drop_privileges(int(drop_to))
        layers.append("uid")
    # After the uid change, which clears it; then make sure the host did not die meanwhile.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    layers.append("nnp")
    set_rlimits(init["limits"])
    layers.append("rlimits")
    return "+".join(layers)
