"""The worker may change only itself: scheduling of other processes, metadata of files outside
(and inside) its scratch dir, and watches on directories are refused by the seccomp filter
(issue #21 items 4, 5 and 7). As root the uid drop would stop most of these on its own, so each
test also runs a worker that keeps root (the ``uid`` layer left out): then only the filter stands
between it and the host. test_unprivileged_host.py repeats them with an ordinary host user.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_toolkit.sandbox import Sandbox, SandboxLimits

from .helpers import SYSCALL

EPERM = "(-1, 1)"


@pytest.fixture(params=["dropped", "root_worker"])
def worker(request: pytest.FixtureRequest, limits: SandboxLimits) -> Iterator[Sandbox]:
    box = Sandbox(limits=limits)
    if request.param == "root_worker":
        if os.geteuid() != 0:
            pytest.skip("only root can start a worker that keeps root")
        box._disable = ("uid",)
    with box:
        yield box


def _lines(box: Sandbox, code: str) -> dict[str, str]:
    result = box.execute(SYSCALL + code)
    assert result.error is None, result.error
    return dict(line.split(" ", 1) for line in result.output.splitlines())


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[16])


def _sched(pid: int) -> tuple[int, int, object, int]:
    return (
        _nice(pid),
        os.sched_getscheduler(pid),
        os.sched_getaffinity(pid),
        os.getpriority(os.PRIO_PROCESS, pid),
    )


SCHEDULING = (
    "t = {t}\nme = os.getpid()\n"
    "print('setpriority', sc(141, 0, t, 19))\n"  # PRIO_PROCESS
    "print('getpriority', sc(140, 0, t))\n"  # probing which pids exist
    # PRIO_PGRP / PRIO_USER with ``who`` = the worker's own pid, which the who-check lets
    # through: only the which-check refuses. (Never who=0 here: were the filter to regress, a
    # root worker would renice every root process on the machine. The worker's group is its own
    # pid, and no process runs under a uid equal to it.)
    "print('prio_pgrp', sc(141, 1, me, 19))\n"
    "print('prio_user', sc(141, 2, me, 19))\n"
    "mask = ct.c_ulong(1)\n"
    "print('setaffinity', sc(203, t, 8, ct.byref(mask)))\n"
    "print('getaffinity', sc(204, t, 8, ct.byref(mask)))\n"
    "param = ct.c_int(0)\n"
    "print('setscheduler', sc(144, t, 5, ct.byref(param)))\n"  # SCHED_IDLE
    "print('setparam', sc(142, t, ct.byref(param)))\n"
    "attr = (ct.c_uint32 * 14)(56, 5)\n"  # struct sched_attr: size, SCHED_IDLE
    "print('setattr', sc(314, t, ct.byref(attr), 0))\n"
    "print('ioprio_set', sc(251, 1, t, (3 << 13)))\n"  # IOPRIO_WHO_PROCESS, class idle
    "print('ioprio_user', sc(251, 3, me, (3 << 13)))\n"  # IOPRIO_WHO_USER (see above)
    "print('ioprio_pgrp', sc(251, 2, me, (3 << 13)))\n"  # IOPRIO_WHO_PGRP
    "lim = (ct.c_ulong * 2)(0, 0)\n"
    "print('prlimit', sc(302, t, 7, ct.byref(lim), 0))\n"  # RLIMIT_NOFILE of another process
    "print('getpgid', sc(121, t))\n"
    "print('getsid', sc(124, t))\n"
)


def test_scheduling_of_the_host_and_of_other_sandboxes_is_refused(worker: Sandbox) -> None:
    with Sandbox() as other:
        other.start()
        assert other._res.worker is not None
        victims = {"host": os.getpid(), "other sandbox": other._res.worker.pid}
        for name, pid in victims.items():
            before = _sched(pid)
            lines = _lines(worker, SCHEDULING.format(t=pid))
            for call, got in lines.items():
                assert got == EPERM, (name, call, got)
            assert _sched(pid) == before, name
        assert other.execute("'still here'").output == "'still here'\n"


def test_the_worker_may_still_change_its_own_scheduling(worker: Sandbox) -> None:
    lines = _lines(
        worker,
        "me = os.getpid()\nn = os.getpriority(os.PRIO_PROCESS, 0)\n"  # only raising nice needs no privilege
        "print('self0', sc(141, 0, 0, min(n + 1, 19)))\n"
        "print('selfpid', sc(141, 0, me, min(n + 2, 19)))\n"
        "print('raised', os.getpriority(os.PRIO_PROCESS, 0) == min(n + 2, 19))\n"
        "os.sched_setaffinity(0, os.sched_getaffinity(0))\nprint('affinity', 'ok')\n",
    )
    assert lines == {"self0": "(0, 0)", "selfpid": "(0, 0)", "raised": "True", "affinity": "ok"}


METADATA = (
    "p = {path!r}\nd = {directory!r}\n"
    "def attempt(name, fn):\n"
    "    try:\n        fn()\n        print(name, 'changed')\n"
    "    except OSError as exc:\n        print(name, type(exc).__name__)\n"
    "attempt('chmod', lambda: os.chmod(p, 0o666))\n"
    "attempt('chmod_dir', lambda: os.chmod(d, 0o777))\n"
    "attempt('chown', lambda: os.chown(p, 65534, 65534))\n"
    "attempt('lchown', lambda: os.lchown(p, 65534, 65534))\n"
    "attempt('utime', lambda: os.utime(p, (0, 0)))\n"
    "attempt('setxattr', lambda: os.setxattr(p, 'user.rlm', b'x'))\n"
    "attempt('removexattr', lambda: os.removexattr(p, 'user.keep'))\n"
    "attempt('getxattr', lambda: os.getxattr(p, 'user.keep'))\n"
    "attempt('listxattr', lambda: os.listxattr(p))\n"
    "fd = os.open(p, os.O_PATH)\n"  # Landlock allows O_PATH anywhere: fd forms are refused too
    "attempt('fchown_path_fd', lambda: os.chown(fd, 65534, 65534))\n"
    "attempt('utimensat_fd', lambda: os.utime(fd, (0, 0)))\n"
    "print('fchownat', sc(260, fd, b'', 65534, 65534, 0x1000))\n"  # AT_EMPTY_PATH
    "print('fchmodat2', sc(452, fd, b'', 0o666, 0x1000))\n"
    "print('futimesat', sc(261, -100, p.encode(), 0))\n"
)


def _metadata(path: Path) -> tuple[object, ...]:
    st = path.stat()
    xattrs = {name: os.getxattr(path, name) for name in os.listxattr(path)}
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_atime_ns, xattrs)


def test_metadata_of_host_files_cannot_change(worker: Sandbox, public_secret: Path) -> None:
    os.setxattr(public_secret, "user.keep", b"host")
    before = _metadata(public_secret), _metadata(public_secret.parent)
    lines = _lines(worker, METADATA.format(path=str(public_secret), directory=str(public_secret.parent)))
    assert lines.pop("fchmodat2") == "(-1, 38)"  # newer than the filter's table: ENOSYS
    assert lines.pop("fchownat") == EPERM and lines.pop("futimesat") == EPERM
    assert set(lines.values()) == {"PermissionError"}, lines
    assert (_metadata(public_secret), _metadata(public_secret.parent)) == before


def test_metadata_of_another_sandboxs_scratch_dir_cannot_change(worker: Sandbox) -> None:
    with Sandbox() as other:
        other.execute("open('mine.txt', 'w').write('private')")
        scratch = Path(str(other._res.scratch))
        before = _metadata(scratch), _metadata(scratch / "mine.txt")
        lines = _lines(worker, METADATA.format(path=str(scratch / "mine.txt"), directory=str(scratch)))
        assert lines.pop("fchmodat2") == "(-1, 38)"
        assert set(lines.values()) <= {"PermissionError", EPERM}, lines
        assert (_metadata(scratch), _metadata(scratch / "mine.txt")) == before


def test_metadata_calls_are_refused_in_the_scratch_dir_too(worker: Sandbox) -> None:
    """The filter cannot read paths, so it refuses the whole family; files the code creates get
    the default mode (0644, dirs 0755) and that is all it needs."""
    result = worker.execute(SYSCALL + "io.open('f', 'w').write('x')\nos.chmod('f', 0o600)")
    assert "PermissionError" in str(result.error)


def test_chattr_ioctls_are_refused(worker: Sandbox) -> None:
    lines = _lines(
        worker,
        "fd = os.open('f', os.O_CREAT | os.O_RDWR)\nflags = ct.c_long(0)\n"
        "print('setflags', sc(16, fd, 0x40086602, ct.byref(flags)))\n"
        "print('setflags32', sc(16, fd, 0x40046602, ct.byref(flags)))\n"
        "buf = (ct.c_char * 28)()\nprint('fssetxattr', sc(16, fd, 0x401C5820, buf))\n"
        "print('isatty_still_works', os.isatty(fd))\n",
    )
    assert lines == {
        "setflags": EPERM,
        "setflags32": EPERM,
        "fssetxattr": EPERM,
        "isatty_still_works": "False",
    }


def test_inotify_and_fanotify_are_refused(worker: Sandbox) -> None:
    lines = _lines(
        worker,
        "print('inotify_init', sc(253))\nprint('inotify_init1', sc(294, 0))\n"
        "print('inotify_add_watch', sc(254, 0, b'/tmp', 0xfff))\n"
        "print('fanotify_init', sc(300, 0, 0))\nprint('fanotify_mark', sc(301, 0, 1, 2, -100, b'/tmp'))\n",
    )
    assert lines == dict.fromkeys(lines, EPERM) and len(lines) == 5


def test_stat_of_host_paths_stays_open(worker: Sandbox, public_secret: Path) -> None:
    """What stays open (SECURITY.md): neither Landlock nor seccomp can refuse stat() by path, so
    the worker learns whether a path its uid can traverse exists, its size, mode, owner and times
    (not its contents)."""
    lines = _lines(worker, f"st = os.stat({str(public_secret)!r})\nprint('size', st.st_size)")
    assert lines == {"size": str(public_secret.stat().st_size)}


def _installed_files() -> dict[str, str]:
    """Files of installed packages, which the stdlib read rule must not cover."""
    import json

    import openai

    import rlm_toolkit

    files = {"openai": openai.__file__, "rlm_toolkit": str(rlm_toolkit.__file__)}
    base_site = Path(json.__file__).parents[1] / "site-packages"  # pyenv / python.org / uv / conda
    if base_site.is_dir():
        files["interpreter_site_packages"] = str(next(p for p in sorted(base_site.iterdir()) if p.is_file()))
    return files


def test_installed_packages_are_unreadable_but_the_stdlib_is(worker: Sandbox) -> None:
    """Issue #21 item 6. With the ``root_worker`` variant no file permission stands in the way
    (this machine's interpreter lives under /root, which the dropped uid cannot enter): only
    Landlock's rules decide."""
    import json

    files = _installed_files()
    stdlib = Path(json.__file__).parents[1]
    code = "def read(path):\n    try:\n        return 'read ' + str(len(io.open(path, 'rb').read()))\n"
    code += "    except OSError as exc:\n        return type(exc).__name__\n"
    for name, path in {**files, "stdlib": str(stdlib / "json" / "decoder.py")}.items():
        code += f"print({name!r}, read({path!r}))\n"
    lines = _lines(worker, code)
    for name in files:
        assert lines[name] == "PermissionError", (name, files[name])
    if worker._disable:  # the root-keeping worker: Landlock grants the stdlib itself
        assert lines["stdlib"].startswith("read ")
