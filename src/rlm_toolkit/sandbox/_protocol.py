"""The pipe protocol between the host and the REPL worker.

A message is a frame: a 4-byte big-endian length, then that many bytes. Control messages are
JSON objects (``{"op": ...}``); a context travels as raw frames of JSON text after a
``{"op": "context", "frames": n}`` header, so 10M characters stream in pipe-sized pieces.

JSON and never pickle/marshal: the host decodes what the worker sends, and the worker runs
hostile code that can write anything to its end of the pipe. Decoding JSON cannot run code.

Stdlib only: the worker imports this module by path, without rlm_toolkit on ``sys.path``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct("!I")
#: Bytes per raw context frame (a pipe's buffer is 64 KiB by default, up to 1 MiB when raised).
CHUNK = 1 << 20

# Worker -> host
READY = "ready"  # {"op", "level"}: confinement done, waiting for work
LOADED = "loaded"  # {"op"}: a context was loaded
OUT = "out"  # {"op", "text"}: output of the running execution, sent as written
QUERY = "query"  # {"op", "kind": "llm"|"rlm", "prompts"/"model" | "prompt"/"context"}
DONE = "done"  # {"op", "output", "error", "final", "answer", "memory"}
FATAL = "fatal"  # {"op", "error"}: the worker could not start
# Host -> worker
INIT = "init"  # {"op", "limits": {...}, "scratch": str, "allow_read": [str], "drop_to": int|None}
CONTEXT = "context"  # {"op", "file", "kind"} (a file in scratch: _context_file.py) | {"op", "frames": n}, then n raw frames
EXEC = "exec"  # {"op", "code"}
REPLY = "reply"  # {"op", "ok": bool, "value" | "error"}


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def encode(message: dict[str, Any]) -> bytes:
    """One framed JSON message. A lone surrogate (e.g. in a sub-model's reply) travels as such
    (``surrogatepass``) and the reader's :func:`decode` turns it into U+FFFD: never an error."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    return frame(text.encode("utf-8", "surrogatepass"))


#: Deepest nesting of lists/objects a message may have. Our own messages nest 3 deep; an
#: ``answer`` or an ``rlm_query`` context a little more. Deeper is refused so no host code that
#: later walks a value recursively (repr, json.dumps, an exporter) can hit the recursion limit.
MAX_DEPTH = 64


def decode(body: bytes) -> dict[str, Any]:
    """A JSON object from a frame body; ``ValueError`` for anything else, whatever the bytes.

    Every exception decoding can raise (``RecursionError`` from deep nesting, ``MemoryError``,
    ``UnicodeDecodeError``, the ``ValueError`` of an int over ``sys.get_int_max_str_digits()``,
    ...) becomes a ``ValueError``; nesting deeper than :data:`MAX_DEPTH` is refused; every lone
    surrogate in a string (an escaped ``\\ud800`` or its raw bytes) becomes U+FFFD, so all
    text handed on is valid Unicode.
    """
    try:
        message = _clean(json.loads(body.decode("utf-8", "surrogatepass")))
    except ValueError:
        raise
    except Exception as exc:  # the peer is hostile: any failure is "malformed"
        raise ValueError(f"undecodable frame ({type(exc).__name__})") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError("not a protocol message")
    return message


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (valid Unicode, printable, encodable)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Per character, only on this rare path: no codec lookup (the confined worker cannot
        # import one lazily). JSON already joined escaped pairs; what is left is lone.
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _clean(value: Any) -> Any:
    """``value`` with every string cleaned (:func:`clean_text`); iterative, depth-bounded."""
    if isinstance(value, str):
        return clean_text(value)
    if not isinstance(value, (list, dict)):
        return value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"a message nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = clean_text(item)
                elif isinstance(item, (list, dict)):
                    stack.append((item, depth + 1))
        else:
            for key, item in list(node.items()):
                if isinstance(item, str):
                    item = node[key] = clean_text(item)
                elif isinstance(item, (list, dict)):
                    stack.append((item, depth + 1))
                if isinstance(key, str) and clean_text(key) is not key:
                    del node[key]
                    node[clean_text(key)] = item
    return value


#: How every frame of ours starts: ``encode`` keeps the dict's order and each message names its
#: op first. The host refuses other frames, so it knows a frame's op from its first bytes.
OP_PREFIX = b'{"op":"'
OUT_PREFIX = b'{"op":"out"'


def out_budget(output_chars: int) -> int:
    """Most bytes of output frames an honest worker sends in one execution: it sends at most
    ``output_chars`` characters (``_repl._Capture``), in at most that many frames, each
    character at most 6 bytes of JSON (``\\u001f``), each frame under 32 bytes of envelope."""
    return 38 * output_chars + 4096


def context_frames(context: Any) -> list[bytes]:
    """The context as a header frame followed by raw frames of its JSON text."""
    text = json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [b""]
    return [encode({"op": CONTEXT, "frames": len(chunks)}), *(frame(c) for c in chunks)]


class FrameBuffer:
    """Accumulates bytes read from a pipe and yields complete frames (host side, non-blocking).

    ``limit`` caps one frame: a bigger length header means the peer is hostile or broken.
    """

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> None:
        self._buf += data

    def has_data(self) -> bool:
        return bool(self._buf)

    def head(self, length: int) -> tuple[int, bytes] | None:
        """The size and first ``length`` bytes of the frame being received, once they are in."""
        if len(self._buf) < HEADER.size + length:
            return None
        return HEADER.unpack_from(self._buf)[0], bytes(self._buf[HEADER.size : HEADER.size + length])

    def next_frame(self) -> bytes | None:
        if len(self._buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buf)
        if size > self._limit:
            raise OverflowError(f"frame of {size} bytes exceeds the limit of {self._limit}")
        end = HEADER.size + size
        if len(self._buf) < end:
            return None
        with memoryview(self._buf) as view:  # one copy (a bytearray slice would make two)
            body = bytes(view[HEADER.size : end])
        del self._buf[:end]
        return body
