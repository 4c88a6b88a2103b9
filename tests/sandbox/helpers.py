"""Shared pieces of the adversarial corpus: escape snippets and host-side checks."""

from __future__ import annotations

from pathlib import Path

#: The inner layer (the import allow-list) is bypassable on purpose: this reaches the real
#: ``__import__`` through a builtin function's module, as hostile code would. Corpus tests start
#: with it, so they prove the kernel layers hold on their own.
ESCAPE = "imp = print.__self__.__import__\nos = imp('os')\nio = imp('io')\n"
#: Raw syscalls through ctypes (already loaded in the worker): no library wrapper to blame.
SYSCALL = (
    ESCAPE
    + "ct = imp('ctypes')\nlibc = ct.CDLL(None, use_errno=True)\n"
    + "def sc(*args):\n    ct.set_errno(0)\n    return libc.syscall(*args), ct.get_errno()\n"
)
SECRET = "sk-test-0123456789-must-never-reach-the-worker"


def group_members(pgid: int) -> list[int]:
    """Pids of live processes whose process group is ``pgid`` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")
