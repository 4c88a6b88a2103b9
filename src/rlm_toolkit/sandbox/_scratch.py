"""The scratch dir a worker owns: where it is made, so the (maybe unprivileged) worker can reach it."""

from __future__ import annotations

import os
import stat
import tempfile

#: The uid/gid a worker started by root drops to ("nobody").
UNPRIVILEGED_ID = 65534


def make_scratch() -> str:
    if os.geteuid() != 0:
        return tempfile.mkdtemp(prefix="rlm-sandbox-")
    # The worker drops to this uid and must own its scratch dir, and reach it by its absolute
    # path: a TMPDIR under a directory only root may enter (/root/tmp, a 0700 dir) would leave it
    # unable to open its own files, so fall back to a shared temporary directory.
    scratch = tempfile.mkdtemp(prefix="rlm-sandbox-", dir=_scratch_parent())
    os.chown(scratch, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
    return scratch


def _others_can_enter(path: str) -> bool:
    """Whether a uid with no groups (the worker's) may traverse every directory down to ``path``."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _scratch_parent() -> str | None:
    """Where a root host puts scratch dirs: the temporary directory if uid 65534 can enter it
    (None: tempfile's choice), else the first shared one that it can."""
    default = tempfile.gettempdir()
    if _others_can_enter(default):
        return None
    for candidate in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(candidate) and _others_can_enter(candidate):
            return candidate
    raise RuntimeError(
        f"the sandbox's unprivileged worker (uid {UNPRIVILEGED_ID}) cannot enter the temporary"
        f" directory {default}: set TMPDIR to a directory every user may enter, e.g. /tmp"
    )
