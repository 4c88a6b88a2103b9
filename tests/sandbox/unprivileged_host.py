"""Run by test_unprivileged_host.py as uid/gid 65534: the host itself is an ordinary user, so
the worker shares its uid. Prints one JSON object: scenario -> what happened.

Stdlib only (it may run on a system Python without our venv); ``argv[1]`` is the ``src`` dir,
``argv[2]`` a loopback port the test listens on.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, sys.argv[1])
from rlm_toolkit.sandbox import Sandbox, SandboxLimits

PORT = int(sys.argv[2])
SECRET = "sk-test-unprivileged-host-secret"
ESCAPE_FILE = "/tmp/rlm-unprivileged-escape"
IMP = "imp = print.__self__.__import__\nos = imp('os')\nio = imp('io')\n"


def outcome(box: Sandbox, code: str) -> str:
    result = box.execute(IMP + code)
    if result.error is None:
        return "ok:" + result.output.strip()
    return result.error.strip().splitlines()[-1].split(":")[0]


def scenarios(box: Sandbox, secret_path: str) -> dict[str, str]:
    return {
        "level": box.level,
        "uid": outcome(box, "print(os.getuid())"),
        "read_host_file": outcome(box, f"print(io.open({secret_path!r}).read())"),
        "parent_environ": outcome(box, "print(io.open(f'/proc/{os.getppid()}/environ', 'rb').read()[:20])"),
        "signal_parent": outcome(box, "os.kill(os.getppid(), 0)\nprint('sent')"),
        "fork": outcome(box, "os.fork()"),
        "subprocess": outcome(box, "imp('subprocess').run(['/bin/true'])"),
        "thread": outcome(box, "imp('threading').Thread(target=print).start()"),
        "connect": outcome(box, f"imp('socket').create_connection(('127.0.0.1', {PORT}), timeout=2)"),
        "write_outside": outcome(box, f"io.open({ESCAPE_FILE!r}, 'w').write('x')"),
    }


def reach(box: Sandbox, secret_path: str, home: str) -> dict[str, str]:
    """Issue #21 items 4, 5, 7 with a host the worker shares its uid with: only seccomp refuses.
    Run only where seccomp is on (without it these would really renice or chmod: never PRIO_USER
    on uid 0 / this uid, which would reach other processes: ``who`` is the worker's own pid)."""
    ct = "ct = imp('ctypes')\nlibc = ct.CDLL(None, use_errno=True)\n"
    return {
        "nice_parent": outcome(box, "os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)"),
        "prio_user": outcome(box, "os.setpriority(os.PRIO_USER, os.getpid(), 19)"),
        "affinity_parent": outcome(box, "os.sched_setaffinity(os.getppid(), {0})"),
        "sched_idle_parent": outcome(
            box, "os.sched_setscheduler(os.getppid(), os.SCHED_IDLE, os.sched_param(0))"
        ),
        "ioprio_parent": outcome(
            box, ct + "print(libc.syscall(251, 1, os.getppid(), 3 << 13), ct.get_errno())"
        ),
        "chmod_secret": outcome(box, f"os.chmod({secret_path!r}, 0o666)"),
        "chmod_home": outcome(box, f"os.chmod({home!r}, 0o777)"),
        "chown_secret": outcome(box, f"os.chown({secret_path!r}, os.getuid(), os.getgid())"),
        "utime_secret": outcome(box, f"os.utime({secret_path!r}, (0, 0))"),
        "setxattr_secret": outcome(box, f"os.setxattr({secret_path!r}, 'user.rlm', b'x')"),
        "inotify": outcome(box, ct + "print(libc.inotify_init1(0), ct.get_errno())"),
    }


def host_state(secret_path: str, home: str) -> tuple[object, ...]:
    st, hst = os.stat(secret_path), os.stat(home)
    return (
        st.st_mode,
        st.st_mtime_ns,
        st.st_uid,
        hst.st_mode,
        hst.st_mtime_ns,
        os.listxattr(secret_path),
        os.getpriority(os.PRIO_PROCESS, 0),
        os.sched_getscheduler(0),
        os.sched_getaffinity(0),
    )


def main() -> None:
    os.environ["OPENAI_API_KEY"] = SECRET
    home = tempfile.mkdtemp(prefix="rlm-unpriv-")
    secret_path = os.path.join(home, "secret.txt")
    with open(secret_path, "w") as f:
        f.write(SECRET)
    os.chmod(secret_path, 0o600)  # the worker's uid owns it: only the sandbox can stop the read
    report: dict[str, dict[str, str]] = {}
    limits = SandboxLimits(wall_seconds=20)
    for name, disable in (
        ("full", ()),
        ("no_landlock", ("landlock",)),
        ("no_seccomp", ("seccomp",)),
        ("rlimits_only", ("landlock", "seccomp")),
    ):
        box = Sandbox(limits=limits)
        box._disable = disable
        with box:
            report[name] = scenarios(box, secret_path)
            if "seccomp" not in disable:
                before = host_state(secret_path, home)
                report[name].update(reach(box, secret_path, home))
                assert host_state(secret_path, home) == before, name
        if os.path.exists(ESCAPE_FILE):  # only a sandbox without its kernel layers lets this through
            os.unlink(ESCAPE_FILE)
            report[name]["write_outside"] += " (file written)"
        # The host is unchanged after each run.
        assert os.environ["OPENAI_API_KEY"] == SECRET
        with open(secret_path) as f:
            assert f.read() == SECRET
    report["host"] = {
        "uid": str(os.getuid()),
        "escape_file": str(os.path.exists("/tmp/rlm-unprivileged-escape")),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
