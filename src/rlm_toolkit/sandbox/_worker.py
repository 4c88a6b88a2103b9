"""The REPL worker: a separate Python process that runs the model's code.

Started by the host as ``python -I -S -B <this file> <read fd> <write fd>`` with an empty
environment, no other fds, its own session (process group), and cwd = the scratch dir. It
imports only the stdlib (and its sibling stdlib-only modules, by path): nothing of rlm_toolkit,
openai or OpenTelemetry, so it starts fast and holds nothing of the host.

Order matters: import every module the REPL offers (and their lazy parts), read the host's
``init`` message, confine the process (``_confine.confine``), and only then say ``ready`` and
accept code. After confinement nothing new needs to be read from disk.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_toolkit.sandbox import _confine, _repl
    from rlm_toolkit.sandbox import _protocol as proto
else:  # by path: the worker never imports the rlm_toolkit package
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _confine
    import _protocol as proto
    import _repl

    del sys.path[0]

#: Exit status when a MemoryError could not even be reported.
EXIT_MEMORY = 3


class Channel:
    """Blocking framed I/O on the two pipe ends the host passed."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self._r = open(rfd, "rb", buffering=1 << 16)  # noqa: SIM115 (lives as long as the process)
        self._w = open(wfd, "wb", buffering=0)  # noqa: SIM115

    def _read_exact(self, size: int) -> bytes:
        data = self._r.read(size)
        if data is None or len(data) != size:
            os._exit(0)  # the host went away (or closed the pipe): nothing left to do
        return data

    def recv_raw(self) -> bytes:
        (size,) = proto.HEADER.unpack(self._read_exact(proto.HEADER.size))
        return self._read_exact(size)

    def recv(self) -> dict[str, Any]:
        return proto.decode(self.recv_raw())

    def send(self, message: dict[str, Any]) -> None:
        data = memoryview(proto.encode(message))
        while data:
            written = self._w.write(data)
            data = data[written or 0 :]


def load_file(repl: _repl.Repl, name: str, kind: Any) -> None:
    """Load the context the host wrote into the scratch dir (cwd), then remove the file."""
    with open(os.path.basename(name), "rb") as f:
        data = f.read()
    os.unlink(os.path.basename(name))
    if kind == "text":
        repl.namespace["context"] = data.decode("utf-8", "surrogatepass")
    else:
        repl.load_context(data)
    del data


def main(argv: list[str]) -> None:
    channel = Channel(int(argv[1]), int(argv[2]))
    _repl.preimport()
    init = channel.recv()
    try:
        level = _confine.confine(init)
    except BaseException as exc:
        channel.send({"op": proto.FATAL, "error": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    limits = init["limits"]
    repl = _repl.Repl(
        channel, output_chars=int(limits["output_chars"]), cpu_seconds=float(limits["cpu_seconds"])
    )
    channel.send({"op": proto.READY, "level": level})
    while True:
        message = channel.recv()
        op = message["op"]
        if op == proto.CONTEXT and "file" in message:  # host side: _context_file.py
            load_file(repl, str(message["file"]), message.get("kind"))
            channel.send({"op": proto.LOADED})
        elif op == proto.CONTEXT:
            frames = [channel.recv_raw() for _ in range(int(message["frames"]))]
            repl.load_context(b"".join(frames))
            del frames
            channel.send({"op": proto.LOADED})
        elif op == proto.EXEC:
            result = repl.run(str(message["code"]))
            try:
                channel.send(result)
            except MemoryError:
                os._exit(EXIT_MEMORY)


if __name__ == "__main__":
    main(sys.argv)
