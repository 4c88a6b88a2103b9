"""Landlock for the worker: the filesystem (and, from ABI 4, TCP; from ABI 6, signals and
abstract unix sockets) limited to a few paths. Runs in the worker, stdlib + ctypes only.

Our own ~100 lines of ctypes rather than a PyPI binding: the worker runs with ``-I -S`` (no
site-packages, by design), the bindings we looked at were a pre-release (``landlock`` 1.0.0.dev5)
or months old with few users, and the kernel interface is three syscalls and two structs.
"""

from __future__ import annotations

import ctypes
import os
import stat

# Syscall numbers are the same on every architecture (allocated after the tables were unified).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
_FS_ABI1 = (1 << 13) - 1
#: The only rights a rule on a regular file (not a directory) may carry.
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

#: Read-only access (Python modules and extension modules).
READ = READ_FILE | READ_DIR | EXECUTE
#: What the code may do in its scratch dir: no exec, no devices, fifos, sockets or symlinks.
SCRATCH = READ_FILE | READ_DIR | WRITE_FILE | TRUNCATE | MAKE_REG | MAKE_DIR | REMOVE_FILE | REMOVE_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(ctypes.c_long(number), *args))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock syscall {number}: {os.strerror(err)}")
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    try:
        return _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def ruleset(rules: list[tuple[str, int]]) -> tuple[int, int] | None:
    """A ruleset allowing only ``rules`` (path, access): ``(fd, abi)``, or None when the kernel
    has no Landlock. Built apart from :func:`enforce` so the paths are opened before the worker
    drops its uid. ``OSError`` when Landlock exists but building fails."""
    abi = abi_version()
    if abi < 1:
        return None
    fs = (
        _FS_ABI1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0) | (IOCTL_DEV if abi >= 5 else 0)
    )
    attr = _RulesetAttr(
        handled_access_fs=fs,
        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8  # older kernels reject fields they lack
    fd = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        for path, access in rules:
            parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = access & fs
                if not stat.S_ISDIR(os.fstat(parent).st_mode):
                    allowed &= _FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=allowed, parent_fd=parent)
                _syscall(
                    _ADD_RULE,
                    ctypes.c_int(fd),
                    ctypes.c_int(_RULE_PATH_BENEATH),
                    ctypes.byref(rule),
                    ctypes.c_uint32(0),
                )
            finally:
                os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd, abi


def enforce(fd: int) -> None:
    """Restrict this process (and anything it could start) to the ruleset; needs no_new_privs.
    ``OSError`` when refused: a half-applied sandbox must not pass."""
    try:
        _syscall(_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0))
    finally:
        os.close(fd)
