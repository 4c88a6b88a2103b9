"""A seccomp-BPF filter for the worker: no network, no new processes or threads, no exec, no
reaching into other processes, no kernel-admin calls. Runs in the worker, stdlib + ctypes only.

A deny list (EPERM) over an allow-by-default base: CPython needs many ordinary syscalls, and the
dangerous ones are few and well known. Assembled here (a few dozen lines) rather than through
libseccomp, which would be a system library the worker has to load.

Only x86_64 is covered (its table was checked against the kernel headers on our machines);
elsewhere ``install()`` returns False and ``Sandbox.level`` says seccomp is missing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
# Classic BPF opcodes used below.
_LD_W_ABS = 0x20
_JEQ, _JGE, _JA = 0x15, 0x35, 0x05
_RET = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
# struct seccomp_data offsets: nr, arch, instruction pointer, args[6] (64-bit each).
_NR, _ARCH = 0, 4
_ARG0_LO, _ARG0_HI = 16, 20
_ARG1_LO, _ARG1_HI = 24, 28
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 1, 4, 22, 2

X86_64 = {
    # network
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43, "accept4": 288,
    # new programs and processes (threads too: the worker is single-threaded by design)
    "execve": 59, "execveat": 322, "fork": 57, "vfork": 58, "clone": 56,
    # other processes
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_open": 434,
    "pidfd_getfd": 438, "pidfd_send_signal": 424, "migrate_pages": 256, "move_pages": 279,
    # leaving the process group the host kills, or the namespaces it shares
    "setsid": 112, "setpgid": 109, "unshare": 272, "setns": 308,
    # mounts and roots
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "move_mount": 429, "open_tree": 428,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    # kernel attack surface an interpreter never needs (io_uring would also bypass this filter)
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "keyctl": 250, "add_key": 248, "request_key": 249, "personality": 135,
    "uselib": 134, "lookup_dcookie": 212, "fanotify_init": 300, "memfd_create": 319, "mknod": 133, "mknodat": 259,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "vhangup": 153,
    # System V IPC and POSIX message queues: shared with other processes of the uid, outside Landlock
    "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66,
    "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
    "process_madvise": 440,
    # administration
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
    "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179, "syslog": 103, "iopl": 172,
    "ioperm": 173, "modify_ldt": 154, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305,
    "adjtimex": 159, "sethostname": 170, "setdomainname": 171, "quotactl_fd": 443,
    # credentials (already dropped; no way back)
    "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117, "setresgid": 119,
    "setgroups": 116, "setfsuid": 122, "setfsgid": 123, "capset": 126,
    # file metadata: Landlock does not cover it, and seccomp cannot read paths; fd forms too (an
    # fd may be a read-only stdlib file or an O_PATH fd, which Landlock allows on any path)
    "chmod": 90, "fchmod": 91, "fchmodat": 268, "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260,
    "utime": 132, "utimes": 235, "utimensat": 280, "futimesat": 261,
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
    "fremovexattr": 199, "getxattr": 191, "lgetxattr": 192, "listxattr": 194, "llistxattr": 195,
    # watching other files and directories (names of files created in /tmp, $HOME, ...)
    "inotify_init": 253, "inotify_init1": 294, "inotify_add_watch": 254, "fanotify_mark": 301,
}  # fmt: skip
#: Syscalls added after the newest one our table was checked against get ENOSYS, as on an older
#: kernel (libc falls back): a deny list must not let new kernel surface in by default.
_NEWEST_KNOWN = 450
_CLONE3 = 435  # ENOSYS, not EPERM: glibc then falls back to clone, which is denied
_SELF_ONLY = {"kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297}
_PRLIMIT64 = 302  # only on itself (pid 0 or its own pid)
#: Calls whose first argument is a pid: only on itself (0 or its own pid), so the worker can
#: neither lower the host's or another sandbox's scheduling nor probe which pids exist.
_PID_ARG0 = {
    "sched_setparam": 142, "sched_getparam": 143, "sched_setscheduler": 144, "sched_getscheduler": 145,
    "sched_rr_get_interval": 148, "sched_setaffinity": 203, "sched_getaffinity": 204,
    "sched_setattr": 314, "sched_getattr": 315, "getpgid": 121, "getsid": 124, "get_robust_list": 274,
}  # fmt: skip
#: (which, who) calls: only ``which`` = a single process (PRIO_PROCESS 0 / IOPRIO_WHO_PROCESS 1)
#: and ``who`` itself; never a process group or a whole uid (PRIO_PGRP, PRIO_USER).
_WHICH_WHO = {
    "getpriority": (140, 0),
    "setpriority": (141, 0),
    "ioprio_set": (251, 1),
    "ioprio_get": (252, 1),
}
_IOCTL = 16
#: ioctl commands that change a file's flags or attributes (chattr): Landlock only covers
#: device ioctls, and a read-only fd suffices for these on a file the uid owns.
_IOCTL_DENIED = {
    "FS_IOC_SETFLAGS": 0x40086602,
    "FS_IOC32_SETFLAGS": 0x40046602,
    "FS_IOC_FSSETXATTR": 0x401C5820,
}
_PRCTL = 157  # all but undoing the parent-death signal or the non-dumpable flag


def _program(pid: int) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) with jumps resolved."""
    code: list[tuple[int, object, object, object]] = []

    def ld(offset: int) -> None:
        code.append((_LD_W_ABS, 0, 0, offset))

    def jump(op: int, k: int, true: object, false: object = 0) -> None:
        code.append((op, true, false, k))

    def label(name: str) -> None:
        code.append((-1, name, None, 0))

    def ret(value: int) -> None:
        code.append((_RET, 0, 0, value))

    def self_only(lo: int, hi: int) -> None:  # the 64-bit argument is 0 or the worker's pid
        ld(hi)
        jump(_JEQ, 0, 0, "eperm")
        ld(lo)
        jump(_JEQ, 0, "allow")
        jump(_JEQ, pid, "allow", "eperm")

    ld(_ARCH)
    jump(_JEQ, _AUDIT_ARCH_X86_64, 0, "kill")
    ld(_NR)
    jump(_JGE, _X32_BIT, "eperm_near")
    jump(_JGE, _NEWEST_KNOWN + 1, "enosys_near")
    for nr in X86_64.values():
        jump(_JEQ, nr, "eperm_near")
    jump(_JEQ, _CLONE3, "enosys_near")
    code.append((_JA, 0, 0, "dispatch"))  # k (a label) is resolved below
    label("eperm_near")  # the deny list is longer than a conditional jump (255) reaches
    ret(_RET_ERRNO | errno.EPERM)
    label("enosys_near")
    ret(_RET_ERRNO | errno.ENOSYS)
    label("dispatch")
    for nr in _SELF_ONLY.values():
        jump(_JEQ, nr, "self_only")
    jump(_JEQ, _PRLIMIT64, "self_or_zero")
    for nr in _PID_ARG0.values():
        jump(_JEQ, nr, "self_or_zero")
    for name, (nr, _which) in _WHICH_WHO.items():
        jump(_JEQ, nr, f"which_{name}")
    jump(_JEQ, _PRCTL, "prctl")
    jump(_JEQ, _IOCTL, "ioctl")
    ret(_RET_ALLOW)
    label("self_only")  # arg0 is a pid (or tid / tgid: the same, single-threaded)
    ld(_ARG0_HI)
    jump(_JEQ, 0, 0, "eperm")
    ld(_ARG0_LO)
    jump(_JEQ, pid, "allow", "eperm")
    label("self_or_zero")
    self_only(_ARG0_LO, _ARG0_HI)
    for name, (_nr, which) in _WHICH_WHO.items():
        label(f"which_{name}")
        ld(_ARG0_LO)  # the kernel reads ``which`` as an int: the low word is what it sees
        jump(_JEQ, which, 0, "eperm")
        self_only(_ARG1_LO, _ARG1_HI)
    label("prctl")
    ld(_ARG0_LO)
    jump(_JEQ, _PR_SET_PDEATHSIG, "eperm")
    jump(_JEQ, _PR_SET_DUMPABLE, "eperm")
    ret(_RET_ALLOW)
    label("ioctl")
    ld(_ARG1_LO)  # the command is an unsigned int: the low word
    for cmd in _IOCTL_DENIED.values():
        jump(_JEQ, cmd, "eperm")
    ret(_RET_ALLOW)
    label("allow")
    ret(_RET_ALLOW)
    label("eperm")
    ret(_RET_ERRNO | errno.EPERM)
    label("kill")
    ret(_RET_KILL_PROCESS)

    labels: dict[object, int] = {}
    real: list[tuple[int, object, object, object]] = []
    for op, a, b, k in code:
        if op == -1:
            labels[a] = len(real)
        else:
            real.append((op, a, b, k))

    def offset(target: object, index: int) -> int:
        if isinstance(target, int):
            return target
        distance = labels[target] - index - 1
        if not 0 <= distance < 256:
            raise ValueError("seccomp filter jump out of range")
        return distance

    def absolute(op: int, k: object, index: int) -> int:  # JA jumps by k, any distance
        if op == _JA and not isinstance(k, int):
            return labels[k] - index - 1
        assert isinstance(k, int)
        return k

    return [(op, offset(a, i), offset(b, i), absolute(op, k, i)) for i, (op, a, b, k) in enumerate(real)]


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def supported() -> bool:
    return os.uname().machine == "x86_64"


def install() -> bool:
    """Install the filter on this process (needs no_new_privs). False when unsupported here;
    ``OSError`` when the kernel refuses it."""
    if not supported():
        return False
    program = _program(os.getpid())
    raw = b"".join(struct.pack("=HBBI", op, jt, jf, k) for op, jt, jf, k in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(program), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
    return True
