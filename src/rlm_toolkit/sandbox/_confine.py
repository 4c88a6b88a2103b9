"""Confine the worker process before it runs any code (runs in the worker, stdlib only).

Layers, each applied when the kernel offers it; the names of those that took effect make up
``Sandbox.level`` (strongest first, e.g. ``"landlock+seccomp+uid+rlimits"``):

* ``landlock``: the filesystem is the scratch dir (read/write) and the stdlib (read); from
  Landlock ABI 4 no TCP bind/connect, from ABI 6 no signals or abstract unix sockets leave it.
* ``seccomp``: a syscall filter: no sockets, exec, fork/clone (no processes, no threads),
  ptrace and cross-process memory, namespaces, mounts, io_uring, bpf, ... (``_seccomp``).
* ``uid``: a worker started as root drops to uid/gid 65534 with no groups, so file
  permissions and signal rules apply to it (``RLIMIT_NPROC`` does not bind root).
* ``rlimits``: address space, file size, open files, no core dumps, no new processes.

Always, before those: ``PR_SET_NO_NEW_PRIVS`` (required by the two kernel layers), not
dumpable, and the parent-death signal (the worker dies with the host).

The kernel layers are a small ctypes layer of our own (``_landlock``, ``_seccomp``), not a
PyPI binding: the worker runs with ``-I -S`` (no site-packages, on purpose), and of the
bindings on PyPI when we looked, ``landlock`` was a 1.0.0.dev pre-release and ``pyseccomp``
(2021) loads the system's libseccomp; the kernel interfaces we need are a handful of calls.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_toolkit.sandbox import _landlock, _seccomp
else:  # by path, like the worker (see _worker.py)
    import _landlock
    import _seccomp

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4

#: Landlock, seccomp and prctl are Linux interfaces; elsewhere only the uid and rlimits apply
#: (and ``Sandbox.level`` says so). Syscall numbers mean other things on other kernels.
LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int = 0) -> None:
    fn = _libc.prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if fn(option, arg, 0, 0, 0) != 0:
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
    cap(resource.RLIMIT_NPROC, 0)  # binds unprivileged uids only: root ignores it
    # Last: everything the worker needs is loaded by now.
    cap(resource.RLIMIT_AS, int(limits["memory_bytes"]))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)  # as root these set the real, effective and saved ids alike
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise PermissionError("could not drop to an unprivileged uid")


#: Entries of the stdlib dir the worker may not read: where pyenv, python.org, Docker's
#: /usr/local, uv and conda interpreters install packages (Debian's are outside it).
NOT_STDLIB = frozenset({"site-packages", "dist-packages"})


def stdlib_entries() -> list[str]:
    """Every entry of the stdlib dir (modules, packages, lib-dynload) but installed packages.

    Landlock rules only add access beneath a path, so the dir itself cannot be allowed with
    site-packages carved out: each entry gets its own rule (about 200, ~1 ms)."""
    import json  # a pure-Python stdlib module: its parent is the stdlib dir

    stdlib = os.path.dirname(os.path.dirname(json.__file__))
    paths = [os.path.join(stdlib, name) for name in sorted(os.listdir(stdlib)) if name not in NOT_STDLIB]
    return [path for path in paths if os.path.exists(path)]  # a dangling symlink has no rule


def landlock_rules(scratch: str) -> list[tuple[str, int]]:
    """The scratch dir, the stdlib without installed packages (lazy imports of allowed
    modules, tracebacks' source lines), the worker's own files. The interpreter binary and its
    shared libraries are mapped already: nothing is exec'd or loaded after confinement."""
    here = os.path.dirname(os.path.abspath(__file__))
    own = ["_worker.py", "_repl.py", "_protocol.py", "_confine.py", "_landlock.py", "_seccomp.py"]
    rules = [(scratch, _landlock.SCRATCH)] + [(path, _landlock.READ) for path in stdlib_entries()]
    return rules + [(os.path.join(here, name), _landlock.READ_FILE) for name in own]


def confine(init: dict[str, Any]) -> str:
    """Apply every available layer; the level reached, e.g. ``"landlock+seccomp+uid+rlimits"``.

    ``init["disable"]`` names layers to leave out (the tests use it to check the fallbacks).
    """
    layers: list[str] = []
    disable = set(init.get("disable") or ())
    parent = os.getppid()
    scratch = init["scratch"]
    os.chdir(scratch)
    # Opened while the worker may still read them (a root worker's stdlib can be under /root).
    landlock = None if "landlock" in disable or not LINUX else _landlock.ruleset(landlock_rules(scratch))
    drop_to = init.get("drop_to")
    if drop_to is not None and os.geteuid() == 0 and "uid" not in disable:
        drop_privileges(int(drop_to))
        layers.append("uid")
    if LINUX:
        # After the uid change, which clears it; then make sure the host did not die meanwhile.
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(0)
        prctl(PR_SET_DUMPABLE, 0)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    if "rlimits" not in disable:
        set_rlimits(init["limits"])
        layers.append("rlimits")
    kernel: list[str] = []
    if landlock is not None:
        _landlock.enforce(landlock[0])
        kernel.append("landlock")
    if "seccomp" not in disable and LINUX and _seccomp.install():
        kernel.append("seccomp")
    return "+".join(kernel + layers) or "none"
