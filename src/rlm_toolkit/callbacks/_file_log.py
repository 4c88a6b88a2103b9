"""``FileLogCallback``: one JSON object per line, appended safely from any thread."""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import re
import threading
import weakref
from typing import Any

from rlm_toolkit.callbacks._base import BaseCallback
from rlm_toolkit.callbacks._types import LLMResponse

log = logging.getLogger("rlm_toolkit.callbacks")

# Belt and braces: nothing that looks like an API key or bearer token reaches the file, even
# inside an error message or a prompt.
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[A-Za-z0-9_\-.=]{6,}|(?i:api[_-]?key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]+)"
)


def _redact(text: str) -> str:
    return _SECRET.sub("[REDACTED]", text)


# Subclasses already told they skipped ``super().__init__()`` (weak: classes made on the fly go).
_not_initialised: weakref.WeakSet[type] = weakref.WeakSet()
_not_initialised_lock = threading.RLock()


def _warn_not_initialised(cls: type) -> None:
    with _not_initialised_lock:
        if cls in _not_initialised:
            return
        _not_initialised.add(cls)
    log.warning(
        "FileLogCallback subclass %s did not call super().__init__(log_path); nothing is written. "
        "Call super().__init__(log_path, ...) from %s.__init__ (logged once)",
        cls.__qualname__,
        cls.__qualname__,
    )


class FileLogCallback(BaseCallback):
    """Appends JSONL records (``llm_start``, ``llm_end``, ``error``, ``retry``, ``tool_*``,
    ``run_*``) to ``log_path``.

    Prompts and responses are written only with ``include_prompts`` / ``include_responses``.
    Each line is one unbuffered ``write`` (one system call) under a reentrant lock, so lines
    never interleave, not even when a span ended on the same thread (a signal handler, say)
    calls this callback again in the middle of a write. The file is
    opened in append mode so several processes can share it.
    """

    # Class defaults, so a subclass that skipped ``super().__init__()`` gets the one clear
    # warning from ``_write`` instead of an AttributeError per event.
    include_prompts = False
    include_responses = False
    _file: io.RawIOBase | None = None  # set by __init__

    def __init__(
        self, log_path: str | os.PathLike[str], include_prompts: bool = False, include_responses: bool = False
    ) -> None:
        self.log_path = os.fspath(log_path)
        self.include_prompts = include_prompts
        self.include_responses = include_responses
        self._lock = threading.RLock()
        try:
            # Unbuffered binary: a line is one os-level write, with no buffer a reentrant call
            # could find half-filled (a buffered writer refuses reentrant calls outright).
            self._file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"FileLogCallback cannot open log file {self.log_path!r}: {exc.strerror}",
                self.log_path,
            ) from exc

    # -- writing ----------------------------------------------------------------------------

    def _write(self, event: str, kwargs: dict[str, Any], fields: dict[str, Any]) -> None:
        entry: dict[str, Any] = {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "event": event,
            "run_id": kwargs.get("run_id"),
            "parent_run_id": kwargs.get("parent_run_id"),
            "operation": kwargs.get("operation"),
            "model": kwargs.get("model"),
        }
        entry.update(fields)
        data = (_redact(json.dumps(entry, ensure_ascii=False, default=str)) + "\n").encode("utf-8")
        file = self._file
        if file is None:
            _warn_not_initialised(type(self))
            return
        with self._lock:
            if file.closed:
                return
            written = file.write(data) or 0
            while written < len(data):  # a short write (disk full, signal): finish the line
                more = file.write(data[written:])
                if not more:
                    return
                written += more

    def close(self) -> None:
        file = self._file
        if file is None:
            return
        with self._lock:
            file.close()

    def __enter__(self) -> FileLogCallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- events -----------------------------------------------------------------------------

    def on_run_start(self, prompt: str, **kwargs: Any) -> None:
        fields: dict[str, Any] = {"prompt_chars": len(prompt)}
        if self.include_prompts:
            fields["prompt"] = prompt
        self._write("run_start", kwargs, fields)

    def on_run_end(self, result: Any, **kwargs: Any) -> None:
        fields: dict[str, Any] = {"duration_ms": kwargs.get("duration_ms")}
        error = kwargs.get("error")
        if error is not None:  # a failed run (its error line was written where it happened)
            fields["error_type"] = kwargs.get("error_type") or type(error).__name__
        if self.include_responses:
            fields["result"] = result
        self._write("run_end", kwargs, fields)

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        fields: dict[str, Any] = {"prompt_chars": len(prompt)}
        if self.include_prompts:
            fields["prompt"] = prompt
        self._write("llm_start", kwargs, fields)

    def on_llm_end(self, response: LLMResponse, **kwargs: Any) -> None:
        usage = response.usage
        known = usage.known  # null, not 0, when the call reported no usage
        fields: dict[str, Any] = {
            "response_model": response.model,
            "finish_reason": response.finish_reason,
            "prompt_tokens": usage.prompt_tokens if known else None,
            "completion_tokens": usage.completion_tokens if known else None,
            "total_tokens": usage.total_tokens if known else None,
            "duration_ms": kwargs.get("duration_ms"),
            "cost": response.cost,
            "tool_calls": len(response.tool_calls),
        }
        if self.include_responses:
            fields["response"] = response.content
        self._write("llm_end", kwargs, fields)

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        fields = {
            "error_type": kwargs.get("error_type") or type(error).__name__,
            "error": str(error),
            "duration_ms": kwargs.get("duration_ms"),
        }
        self._write("error", kwargs, fields)

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        fields = {
            "attempt": attempt,
            "max_attempts": max_attempts,
            "delay_s": kwargs.get("delay_s"),
            "status_code": kwargs.get("status_code"),
            "error_type": kwargs.get("error_type") or (type(error).__name__ if error is not None else None),
        }
        self._write("retry", kwargs, fields)

    def on_tool_start(self, tool_name: str, tool_input: Any, **kwargs: Any) -> None:
        fields: dict[str, Any] = {"tool": tool_name}
        if self.include_prompts:
            fields["input"] = tool_input
        self._write("tool_start", kwargs, fields)

    def on_tool_end(self, tool_name: str, tool_output: Any, **kwargs: Any) -> None:
        fields: dict[str, Any] = {"tool": tool_name, "duration_ms": kwargs.get("duration_ms")}
        if self.include_responses:
            fields["output"] = tool_output
        self._write("tool_end", kwargs, fields)
