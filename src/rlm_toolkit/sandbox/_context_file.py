"""The context travels to the worker as a file in its own scratch dir, not through the pipe.

The host writes the encoded context to ``<scratch>/.context`` (mode 0600, owned by the worker's
uid when the host is root: readable by this worker only, in the 0700 dir only it uses) and sends
``{"op": "context", "file": ".context", "kind": "text"|"json"}``; the worker reads the file,
removes it and decodes it: a str as UTF-8 text (no JSON on either side), anything else as JSON.
The pipe then carries one small message whatever the context's size.

Stdlib only (host side; the worker reads the file with its own few lines).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

#: The file's name inside the scratch dir.
NAME = ".context"
#: ``kind`` of a str context: UTF-8 text, decoded without JSON.
TEXT = "text"
#: ``kind`` of a list or dict context: JSON text.
JSON = "json"
_UNPRIVILEGED_ID = 65534  # the uid a root host's worker drops to (Sandbox's UNPRIVILEGED_ID)


def encode(context: Any) -> tuple[str, bytes]:
    """``(kind, bytes)`` of a context; ``TypeError``/``ValueError`` when it is not JSON data."""
    if isinstance(context, str):
        return TEXT, context.encode("utf-8", "surrogatepass")
    return JSON, json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write(scratch: str, kind: str, data: bytes) -> dict[str, Any]:
    """Write the context into ``scratch``; the protocol message that tells the worker to load it."""
    path = os.path.join(scratch, NAME)
    # A fresh file: whatever the worker left under that name (a link, a fifo) is never opened.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise ValueError(f"cannot write the context file: {exc}") from None
    try:
        if os.geteuid() == 0:
            os.fchown(fd, _UNPRIVILEGED_ID, _UNPRIVILEGED_ID)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return {"op": "context", "file": NAME, "kind": kind}
