"""The REPL inside the worker: persistent namespace, output capture, FINAL/answer, sub-calls.

Stdlib only (imported by path in the worker). The restricted builtins here (an import
allow-list, ``open`` limited to the scratch dir) are an inner layer that gives an honest model
clear errors; they are bypassable by design and never the boundary: the kernel layers in
``_confine`` are.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import io
import json
import linecache
import math
import os
import resource
import sys
import traceback
from collections.abc import Callable
from typing import Any, Protocol

#: Modules the code may import (top-level names). All are imported before confinement.
ALLOWED_MODULES = frozenset(
    [
        "__future__",
        "abc",
        "array",
        "base64",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "pprint",
        "random",
        "re",
        "statistics",
        "string",
        "struct",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
    ]
)
#: Lazily imported parts of the allowed modules (and what error formatting needs).
_LAZY_PARTS = [
    "_strptime",
    "collections.abc",
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.cp1252",
    "encodings.unicode_escape",
    "encodings.raw_unicode_escape",
    "json.decoder",
    "json.encoder",
    "traceback",
    "linecache",
]
_ERROR_CHARS = 4000


class _Channel(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...
    def recv(self) -> dict[str, Any]: ...


def preimport() -> None:
    for name in sorted(ALLOWED_MODULES) + _LAZY_PARTS:
        importlib.import_module(name)


class _Capture(io.TextIOBase):
    """stdout+stderr of one execution, sent to the host as written (so output made before a
    kill survives it), up to ``limit`` characters; the rest is only counted."""

    def __init__(self, send: Callable[[dict[str, Any]], None], limit: int) -> None:
        self._send = send
        self._room = limit
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._room > 0 and s:
            piece = s[: self._room]
            self._room -= len(piece)
            self.dropped += len(s) - len(piece)
            self._send({"op": "out", "text": piece})  # _protocol.OUT
        else:
            self.dropped += len(s)
        return len(s)


#: The host refuses messages nested deeper (``_protocol.MAX_DEPTH``; this module is stdlib-only).
_MAX_DEPTH = 60


def _shallow(value: Any) -> bool:
    """Whether ``value`` nests lists/dicts at most ``_MAX_DEPTH`` deep (iterative)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, tuple, dict)):
            if depth > _MAX_DEPTH:
                return False
            stack.extend((item, depth + 1) for item in (node.values() if isinstance(node, dict) else node))
    return True


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return str(value)
    return value if _shallow(value) else str(value)


def _trim(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else "[...]\n" + text[-_ERROR_CHARS:]


class Repl:
    def __init__(self, channel: _Channel, *, output_chars: int, cpu_seconds: float) -> None:
        self._channel = channel
        self._output_chars = output_chars
        self._cpu_seconds = cpu_seconds
        self._cells = 0
        self._final: list[str] = []
        self.namespace: dict[str, Any] = {}
        self._reset_namespace()

    def _reset_namespace(self) -> None:
        ns = self.namespace
        ns.clear()
        ns["__name__"] = "__repl__"
        ns["__builtins__"] = _restricted_builtins()
        ns["context"] = None
        ns["answer"] = {"content": "", "ready": False}
        ns["llm_query"] = self._llm_query
        ns["llm_query_batched"] = self._llm_query_batched
        ns["rlm_query"] = self._rlm_query
        ns["FINAL"] = self._final_value
        ns["FINAL_VAR"] = self._final_var

    # -- functions the code calls ------------------------------------------------------------
    def _ask(self, message: dict[str, Any]) -> Any:
        self._channel.send(message)
        reply = self._channel.recv()
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error", "sub-call failed")))
        return reply.get("value")

    def _llm_query_batched(self, prompts: list[str], model: str | None = None) -> list[str]:
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        value = self._ask({"op": "query", "kind": "llm", "prompts": prompts, "model": model})
        return [str(v) for v in value]

    def _llm_query(self, prompt: str, model: str | None = None) -> str:
        return self._llm_query_batched([prompt], model)[0]

    def _rlm_query(self, prompt: str, context: Any = None) -> str:
        try:
            json.dumps(context)
            if not _shallow(context):
                raise ValueError(f"nested deeper than {_MAX_DEPTH} levels")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"rlm_query: context must be JSON data (str, list, dict, ...): {exc}") from None
        return str(self._ask({"op": "query", "kind": "rlm", "prompt": str(prompt), "context": context}))

    def _final_value(self, value: Any) -> None:
        self._final[:] = [str(value)]

    def _final_var(self, name: str) -> None:
        if not isinstance(name, str) or name not in self.namespace:
            raise NameError(f"FINAL_VAR: no variable named {name!r} in the REPL")
        self._final[:] = [str(self.namespace[name])]

    # -- host requests -----------------------------------------------------------------------
    def load_context(self, data: bytes) -> None:
        self.namespace["context"] = json.loads(data)

    def run(self, code: str) -> dict[str, Any]:
        """Run one cell; the ``done`` message for the host (never raises)."""
        self._cells += 1
        _limit_cpu(self._cpu_seconds)
        filename = f"<repl-{self._cells}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        capture = _Capture(self._channel.send, self._output_chars)
        self._final.clear()
        answer = self.namespace.get("answer")
        before = (answer, *_answer_parts(answer))
        error: str | None = None
        memory = False
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        try:
            _run_cell(code, filename, self.namespace)
        except MemoryError:
            memory = True
            error = "MemoryError"
        except BaseException as exc:  # the code's own failure (SystemExit and KeyboardInterrupt too)
            error = _format(exc)
        finally:
            sys.stdout, sys.stderr = saved
        answer = self.namespace.get("answer")
        touched = None
        if isinstance(answer, dict) and any(
            a is not b for a, b in zip(before, (answer, *_answer_parts(answer)), strict=True)
        ):
            touched = {"content": _jsonable(answer.get("content")), "ready": bool(answer.get("ready"))}
        return {
            "op": "done",
            "dropped": capture.dropped,
            "error": error,
            "final": self._final[0] if self._final else None,
            "answer": touched,
            "memory": memory,
        }


def _limit_cpu(seconds: float) -> None:
    """Soft ``RLIMIT_CPU`` for this execution (SIGXCPU ends the worker): a second layer under
    the host, which measures the worker's CPU time and kills it past the limit."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (OSError, ValueError):
        pass  # the host's own CPU check still holds


def _answer_parts(answer: Any) -> tuple[Any, Any]:
    if isinstance(answer, dict):
        return answer.get("content"), answer.get("ready")
    return None, None


def _run_cell(code: str, filename: str, namespace: dict[str, Any]) -> None:
    """Exec ``code``; a trailing expression's value is printed, as in an interactive REPL."""
    tree = ast.parse(code, filename, "exec")
    last: ast.expr | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1].value
        del tree.body[-1]
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last), filename, "eval"), namespace)
        if value is not None:
            print(repr(value))


def _format(exc: BaseException) -> str:
    # Only the code's own frames: the worker's (exec, the import guard) are noise to the model.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<repl-")]
    lines = traceback.format_exception_only(type(exc), exc)
    if frames and not isinstance(exc, SyntaxError):
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames), *lines]
    return _trim("".join(lines).rstrip())


def _restricted_builtins() -> dict[str, Any]:
    real_import: Callable[..., Any] = builtins.__import__
    scratch = os.getcwd()

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if level or name.partition(".")[0] not in ALLOWED_MODULES:
            raise ImportError(
                f"module {name!r} is not available in the sandbox (allowed: {', '.join(sorted(ALLOWED_MODULES))})"
            )
        return real_import(name, globals, locals, fromlist, level)

    def scratch_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(file, (str, bytes, os.PathLike)):
            raise PermissionError("open(): only paths inside the sandbox's scratch directory")
        path = os.path.realpath(os.fsdecode(file))
        if path != scratch and not path.startswith(scratch + os.sep):
            raise PermissionError(f"open(): {os.fsdecode(file)!r} is outside the sandbox's scratch directory")
        return open(path, *args, **kwargs)

    table = dict(vars(builtins))
    table["__import__"] = guarded_import
    table["open"] = scratch_open
    for name in ("breakpoint", "input", "help", "exit", "quit", "copyright", "credits", "license"):
        table.pop(name, None)
    return table
