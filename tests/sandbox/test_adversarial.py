"""The adversarial corpus: hostile code, one attempt per test. Each attempt must be contained
(reported in the ExecutionResult, never raised), and the host untouched: alive, environment
unchanged, its files unchanged, and no process of the worker's group left after close().

These run as whoever runs the suite (root on our machines and CI); test_unprivileged_host.py
re-runs the claims that differ with an unprivileged host. Most attempts first bypass the inner
layer (helpers.ESCAPE) so that they test the kernel layers.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_toolkit.sandbox import ExecutionResult, Sandbox, SandboxLimits

from .conftest import Handler
from .helpers import ESCAPE, SECRET, SYSCALL, group_members, thread_count

ROOT = Path(__file__).resolve().parents[2]


class Box:
    """A sandbox whose every worker is remembered, so teardown can prove none survives."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.pids: set[int] = set()

    def worker_pid(self) -> int:
        self.sandbox.start()
        worker = self.sandbox._res.worker
        assert worker is not None
        self.pids.add(worker.pid)
        return worker.pid

    def run(self, code: str, handler: Handler | None = None) -> ExecutionResult:
        self.worker_pid()
        result = self.sandbox.execute(code, handler)
        if self.sandbox._res.worker is not None:
            self.pids.add(self.sandbox._res.worker.pid)
        return result


@pytest.fixture
def box(limits: SandboxLimits, monkeypatch: pytest.MonkeyPatch, public_secret: Path) -> Iterator[Box]:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def environment() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    env_before = environment()
    secret_before = public_secret.read_bytes(), public_secret.stat().st_mtime_ns
    project_before = (ROOT / "pyproject.toml").read_bytes()
    watched = Box(Sandbox(limits=limits))
    try:
        yield watched
    finally:
        watched.sandbox.close()
    assert environment() == env_before
    assert (public_secret.read_bytes(), public_secret.stat().st_mtime_ns) == secret_before
    assert (ROOT / "pyproject.toml").read_bytes() == project_before
    for pid in watched.pids:
        assert group_members(pid) == [], f"processes of the worker's group {pid} survived close()"


def contained(result: ExecutionResult, *needles: str) -> str:
    """The attempt failed inside the sandbox and said why."""
    assert result.error is not None, f"the attempt was not stopped: {result}"
    for needle in needles:
        assert needle in result.error, result.error
    return result.error


# -- imports and what they can do --------------------------------------------------------------
@pytest.mark.parametrize("module", ["os", "subprocess", "socket", "ctypes", "sys", "gc", "importlib"])
def test_plain_imports_of_dangerous_modules_are_refused(box: Box, module: str) -> None:
    contained(box.run(f"import {module}"), f"module {module!r} is not available in the sandbox")


def test_os_system_and_spawn_cannot_start_programs(box: Box, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = (
        ESCAPE
        + f"rc = os.system('touch {marker}')\nprint(rc)\nos.posix_spawn('/bin/touch', ['touch', '{marker}'], {{}})"
    )
    result = box.run(code)
    contained(result, "PermissionError")
    assert result.output.strip() != "0"
    assert not marker.exists()


def test_subprocess_cannot_run(box: Box, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # As root the dropped worker cannot even read the stdlib to import subprocess; unprivileged,
    # the import works and the fork is refused. Either way nothing runs.
    result = box.run(ESCAPE + f"imp('subprocess').run(['touch', '{marker}'])")
    contained(result)
    assert "PermissionError" in str(result.error) or "No module named 'subprocess'" in str(result.error)
    assert not marker.exists()


def test_raw_syscalls_are_filtered(box: Box) -> None:
    code = SYSCALL + (
        "print('socket', sc(41, 2, 1, 0))\n"  # socket(AF_INET, SOCK_STREAM, 0)
        "print('fork', sc(57))\n"
        "print('clone', sc(56, 17, 0, 0, 0, 0))\n"  # clone(SIGCHLD): a fork
        "print('clone3', sc(435, 0, 0))\n"
        "print('ptrace', sc(101, 16, os.getppid(), 0, 0))\n"  # PTRACE_ATTACH the host
        "print('execve', sc(59, b'/bin/true', 0, 0))\n"
        "print('unshare', sc(272, 0x10000000))\n"  # CLONE_NEWUSER
        "print('io_uring', sc(425, 1, 0))\n"
        "print('shmget', sc(29, 0, 4096, 0o1666))\n"  # IPC_PRIVATE | IPC_CREAT
        "print('newer', sc(457, 0, 0, 0, 0))\n"  # statmount: newer than the filter's table
        "print('x32', sc(0x40000000 | 39))\n"  # getpid through the x32 ABI
    )
    result = box.run(code)
    assert result.error is None, result.error
    lines = dict(line.split(" ", 1) for line in result.output.splitlines())
    for name in ("socket", "fork", "clone", "ptrace", "execve", "unshare", "io_uring", "shmget", "x32"):
        assert lines[name] == "(-1, 1)", (name, lines[name])  # EPERM
    assert lines["clone3"] == "(-1, 38)"  # ENOSYS, so a libc falls back to clone
    assert lines["newer"] == "(-1, 38)"  # unknown to the filter: as if the kernel were older


# -- files -------------------------------------------------------------------------------------
def test_etc_passwd(box: Box) -> None:
    contained(box.run("open('/etc/passwd').read()"), "outside the sandbox's scratch directory")
    contained(box.run(ESCAPE + "io.open('/etc/passwd').read()"), "PermissionError")


def test_host_files_cannot_be_read(box: Box, public_secret: Path) -> None:
    contained(box.run(ESCAPE + f"print(io.open({str(public_secret)!r}).read())"), "PermissionError")
    contained(box.run(ESCAPE + f"print(io.open({str(ROOT / 'pyproject.toml')!r}).read())"), "PermissionError")
    contained(box.run(ESCAPE + f"print(os.listdir({str(ROOT)!r}))"), "PermissionError")
    contained(box.run(ESCAPE + f"print(os.listdir({str(Path.home())!r}))"), "PermissionError")


def test_proc_environ_of_self_and_parent(box: Box) -> None:
    contained(box.run(ESCAPE + "io.open('/proc/self/environ', 'rb').read()"), "PermissionError")
    result = box.run(ESCAPE + "io.open(f'/proc/{os.getppid()}/environ', 'rb').read()")
    assert SECRET not in result.output
    contained(result, "PermissionError")
    contained(box.run(ESCAPE + "io.open(f'/proc/{os.getppid()}/mem', 'rb').read(1)"), "PermissionError")


def test_writing_outside_the_scratch_dir(box: Box, public_secret: Path) -> None:
    if os.path.exists("/tmp/rlm-sandbox-escape"):
        os.unlink("/tmp/rlm-sandbox-escape")  # left by an earlier, weaker run: start clean
    contained(box.run(ESCAPE + f"io.open({str(public_secret)!r}, 'w').write('owned')"), "PermissionError")
    contained(box.run(ESCAPE + "io.open('/tmp/rlm-sandbox-escape', 'w').write('x')"), "PermissionError")
    contained(box.run(ESCAPE + "os.symlink('/etc/passwd', 'link')"), "PermissionError")
    assert not os.path.exists("/tmp/rlm-sandbox-escape")
    inside = box.run(
        ESCAPE + "io.open('notes.txt', 'w').write('ok')\nprint(io.open('notes.txt').read(), os.listdir('.'))"
    )
    assert inside.error is None and inside.output == "ok ['notes.txt']\n"


def test_huge_file_in_the_scratch_dir(box: Box) -> None:
    code = ESCAPE + "f = io.open('big', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20))"
    contained(box.run(code), "File too large")
    assert box.run(ESCAPE + "os.path.getsize('big') <= 16 << 20").output == "True\n"


def test_no_inherited_fds_and_cwd_is_the_scratch_dir(box: Box, public_secret: Path) -> None:
    leaked = os.open(public_secret, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # even a descriptor the host marked inheritable stays home
    try:
        box.worker_pid()
        scratch = box.sandbox._res.scratch
        code = ESCAPE + (
            "def is_open(fd):\n    try:\n        os.fstat(fd)\n        return True\n    except OSError:\n        return False\n"
            "print([fd for fd in range(1024) if is_open(fd)], os.getcwd())"
        )
        result = box.run(code)
        argv = box.run(ESCAPE + "print(imp('sys').argv[1:])").output
    finally:
        os.close(leaked)
    pipes = [int(fd) for fd in argv.strip()[1:-1].replace("'", "").split(", ")]
    assert result.output == f"{sorted([0, 1, 2, *pipes])} {scratch}\n"


# -- the host's secrets --------------------------------------------------------------------------
def test_the_api_key_is_not_in_the_worker(box: Box) -> None:
    assert box.run(ESCAPE + "print(os.environ.get('OPENAI_API_KEY'))").output == "None\n"
    walk = ESCAPE + (
        "gc = imp('gc')\nsys = imp('sys')\nfound = []\n"
        "needle = b'sk-' + b'test-'  # built at run time, so the code's own text does not match\n"
        "for obj in gc.get_objects():\n"
        "    try:\n"
        "        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()\n"
        "        found += [v for v in items if isinstance(v, (str, bytes)) and v is not needle and needle in (v if isinstance(v, bytes) else v.encode())]\n"
        "    except Exception:\n"
        "        pass\n"
        "frame = sys._getframe()\n"
        "while frame is not None:\n"
        "    found += [k for k in frame.f_globals if 'key' in k.lower() and 'api' in k.lower()]\n"
        "    frame = frame.f_back\n"
        "subs = object.__subclasses__()\n"
        "print(len(found), len(subs) > 50, sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'opentelemetry', 'rlm_toolkit', 'httpx')))"
    )
    result = box.run(walk)
    assert result.error is None, result.error
    assert result.output == "0 True []\n"  # the walk ran over everything, and found nothing


def test_host_memory_is_out_of_reach(box: Box) -> None:
    parent_heap = ESCAPE + "io.open(f'/proc/{os.getppid()}/maps').read()"
    contained(box.run(parent_heap), "PermissionError")
    code = (
        SYSCALL + "buf = ct.create_string_buffer(16)\nprint(sc(310, os.getppid(), 0, 1, 0, 1, 0))"
    )  # process_vm_readv
    assert box.run(code).output == "(-1, 1)\n"


# -- processes ----------------------------------------------------------------------------------
def test_fork_bomb(box: Box) -> None:
    result = box.run(ESCAPE + "n = 0\nwhile True:\n    os.fork()\n    n += 1")
    contained(result, "PermissionError")
    pid = box.worker_pid()
    assert group_members(pid) == [pid]


def test_threads_cannot_start_or_outlive_an_execution(box: Box) -> None:
    result = box.run(ESCAPE + "imp('_thread').start_new_thread(lambda: None, ())")
    contained(result, "can't start new thread")
    pid = box.worker_pid()
    assert thread_count(pid) == 1
    assert group_members(pid) == [pid]


def test_killing_the_parent(box: Box) -> None:
    result = box.run(ESCAPE + "os.kill(os.getppid(), 9)")
    contained(result, "PermissionError")
    contained(box.run(ESCAPE + "os.killpg(os.getpgid(os.getppid()), 9)"), "PermissionError")
    assert box.run("'host still there'").output == "'host still there'\n"


def test_leaving_the_process_group(box: Box) -> None:
    contained(box.run(ESCAPE + "os.setsid()"), "PermissionError")
    contained(box.run(ESCAPE + "os.setpgid(0, 0)"), "PermissionError")


# -- network ------------------------------------------------------------------------------------
def test_connect_to_a_listening_loopback_port() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        with Sandbox() as sandbox:
            attempt = ESCAPE + f"imp('socket').create_connection(('127.0.0.1', {port}), timeout=2)"
            result = sandbox.execute(attempt)
            assert result.error is not None
            assert "PermissionError" in result.error or "No module named 'socket'" in result.error
            # Without the socket module: a raw socket() and a raw connect() on an inherited fd.
            raw = SYSCALL + "print(sc(41, 2, 1, 0), sc(42, 0, b'\\x02\\x00' + bytes(14), 16))"
            assert sandbox.execute(raw).output == "(-1, 1) (-1, 1)\n"
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


# -- limits -------------------------------------------------------------------------------------
def test_cpu_loop(box: Box) -> None:
    # A wall limit far above the CPU limit: on a loaded machine CPU time lags wall time.
    box.sandbox.close()
    box.sandbox = Sandbox(limits=SandboxLimits(cpu_seconds=1, wall_seconds=120))
    result = box.run("while True:\n    pass")
    assert result.killed == "cpu"
    assert box.run("'next'").output == "'next'\n"


def test_wall_clock_stall(box: Box) -> None:
    result = box.run(ESCAPE + "print('stalling')\nos.read(0, 1) if False else imp('time').sleep(3600)")
    assert result.killed == "wall"
    assert result.output == "stalling\n"


def test_memory_bomb(box: Box) -> None:
    result = box.run("blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 24))")
    assert result.killed == "memory"
    single = box.run("x = ' ' * (1 << 40)")
    assert single.killed == "memory"


def test_giant_output(box: Box) -> None:
    result = box.run("for i in range(200_000):\n    print('spam' * 10)")
    assert result.error is None and result.killed is None
    assert result.output.startswith("spamspam")
    assert result.output.endswith("more characters of output cut (output_chars=1000)]")
    assert len(result.output) < 1100


def _patient(box: Box) -> None:
    """CPU-bound attempts are bounded by ``cpu_seconds``; a generous wall limit keeps them from
    ending as "wall" on a loaded machine (the 2-core CI box runs the suite in parallel)."""
    box.sandbox.limits = dataclasses.replace(box.sandbox.limits, wall_seconds=60)


def test_deep_recursion(box: Box) -> None:
    _patient(box)
    contained(box.run("def f(n):\n    return f(n + 1)\nf(0)"), "RecursionError")
    # Lifting the recursion limit lets C code overflow its stack: the worker dies, the host does not.
    nested = "l = []\nfor _ in range(10**6):\n    l = [l]\nrepr(l)"
    crash = box.run(ESCAPE + "imp('sys').setrecursionlimit(10**9)\n" + nested)
    assert crash.killed == "crash" and "signal 11" in str(crash.error)
    assert box.run("'alive'").output == "'alive'\n"


def test_sub_call_flood(box: Box, handler: Handler) -> None:
    _patient(box)
    result = box.run(
        "for i in range(10_000):\n    try:\n        llm_query(str(i))\n    except RuntimeError:\n        pass",
        handler,
    )
    assert result.queries == 5 and len(handler.calls) == 5
    contained(result, "sub-call limit reached")
    batch = box.run("llm_query_batched(['x'] * 10_000)", handler)
    assert batch.queries == 0 and len(handler.calls) == 5
    contained(batch, "sub-call limit reached")


# -- the protocol itself is untrusted ------------------------------------------------------------
FORGE = (
    ESCAPE
    + "st = imp('struct')\nw = int(imp('sys').argv[2])\ndef forge(body):\n    os.write(w, st.pack('!I', len(body)) + body)\n"
)


def test_forged_garbage_and_oversized_frames(box: Box) -> None:
    garbage = box.run(FORGE + "forge(b'not json')\nimp('time').sleep(60)")
    assert garbage.killed == "crash" and "broke the protocol" in str(garbage.error)
    huge = box.run(FORGE + "os.write(w, st.pack('!I', 2**31))\nimp('time').sleep(60)")
    assert huge.killed == "output"
    assert box.run("'fine'").output == "'fine'\n"


def test_forged_end_then_running_on_is_caught(box: Box) -> None:
    code = (
        FORGE
        + 'forge(b\'{"op":"done","error":null,"final":"forged","answer":null,"memory":false}\')\nwhile True:\n    pass'
    )
    forged = box.run(code)
    assert forged.final == "forged"  # the host cannot tell this apart...
    pid = box.worker_pid()
    worker = box.sandbox._res.worker
    assert worker is not None
    start = worker.cpu_seconds()
    deadline = time.monotonic() + 60
    while worker.cpu_seconds() - start < 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = box.run("'next'")  # ...but the next execution sees the worker was never idle
    assert after.killed == "cpu"
    assert "kept running after its execution ended" in str(after.error)
    assert group_members(pid) == []


def test_forged_end_then_writing_on_is_caught(box: Box) -> None:
    code = FORGE + 'forge(b\'{"op":"done","error":null,"final":null,"answer":null,"memory":false}\')\n'
    code += 'forge(b\'{"op":"out","text":"injected into the next result"}\')\nimp(\'time\').sleep(3600)'
    box.run(code)
    worker = box.sandbox._res.worker
    assert worker is not None
    deadline = time.monotonic() + 30
    while not worker.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    after = box.run("print('next')")
    assert after.killed == "output"
    assert "injected" not in after.output
    assert "kept writing after its execution ended" in str(after.error)
    assert box.run("print('clean')").output == "clean\n"


def test_sandboxes_are_isolated_from_each_other(box: Box) -> None:
    """Two sandboxes' workers share uid 65534 as root (and the host's uid otherwise): only
    Landlock keeps one out of the other's scratch dir, and seccomp keeps their signals apart."""
    with Sandbox() as other:
        other.execute(ESCAPE + "io.open('mine.txt', 'w').write('private')")
        scratch = other._res.scratch
        assert other._res.worker is not None
        victim = other._res.worker.pid
        contained(box.run(ESCAPE + f"io.open({scratch!r} + '/mine.txt').read()"), "PermissionError")
        contained(box.run(ESCAPE + f"os.kill({victim}, 9)"), "PermissionError")
        assert other.execute("'still here'").output == "'still here'\n"


def test_host_stays_alive_and_collectable() -> None:
    boxes = [Sandbox() for _ in range(3)]
    pids = []
    for sandbox in boxes:
        sandbox.start()
        assert sandbox._res.worker is not None
        pids.append(sandbox._res.worker.pid)
    del boxes, sandbox
    gc.collect()  # a dropped Sandbox is finalized: its worker and group are killed
    for pid in pids:
        assert group_members(pid) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC binds an unprivileged worker anyway")
def test_as_root_only_the_filter_or_the_uid_drop_stops_fork() -> None:
    """Without seccomp and without the uid drop, a root worker can fork (RLIMIT_NPROC does not
    bind root): what SECURITY.md says about weaker levels. The group kill still ends the child."""
    sandbox = Sandbox()
    sandbox._disable = ("seccomp", "uid")
    with sandbox:
        assert sandbox.level == "landlock+rlimits"
        code = ESCAPE + "pid = os.fork()\nif pid == 0:\n    imp('time').sleep(3600)\nprint('child', pid)"
        result = sandbox.execute(code)
        assert result.error is None and result.output.startswith("child ")
        worker = sandbox._res.worker
        assert worker is not None
        child = int(result.output.split()[1])
        assert sorted(group_members(worker.pid)) == sorted([worker.pid, child])
    assert group_members(worker.pid) == []


def test_file_size_limit_is_per_file_not_a_quota(box: Box) -> None:
    """What SECURITY.md says the sandbox does not do: RLIMIT_FSIZE caps each file, not the scratch
    dir, so code can fill the filesystem holding it with many files under the limit."""
    code = (
        ESCAPE
        + "for i in range(3):\n    io.open(f'part{i}', 'wb').write(b'x' * (8 << 20))\nsum(os.path.getsize(f'part{i}') for i in range(3))"
    )
    result = box.run(code)
    assert result.error is None and result.output == f"{3 * (8 << 20)}\n"
