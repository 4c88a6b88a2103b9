"""Scripted behaviour of the server: queued replies, queued faults and the request log.

All of it is shared between the handler threads, so every access goes through one lock.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

#: Faults answered with an HTTP error status and the real API's error JSON.
ERROR_FAULTS: Mapping[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "rate_limit": 429,
    "server_error": 500,
    "unavailable": 503,
}
#: Faults that only make sense for a streaming request; they wait for the next one.
STREAM_FAULTS = frozenset({"cut_stream", "malformed_sse", "no_usage", "stream_error"})
#: Every fault kind :meth:`OpenAIServer.queue_fault` accepts.
FAULT_KINDS = frozenset({*ERROR_FAULTS, *STREAM_FAULTS, "slow", "reset"})

_REDACTED_HEADERS = frozenset({"authorization", "api-key", "cookie", "proxy-authorization", "x-api-key"})
#: Query parameters whose values are secrets (names compared case-insensitively, percent-decoded).
_REDACTED_PARAMS = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
        "sig",
        "signature",
        "token",
        "x-api-key",
    }
)
# One ``name=value`` pair of a query string: at its start, or after ``?``, ``&`` or ``;``, so the
# same pattern works on a bare query and on a whole request line ("POST /p?api-key=x HTTP/1.1").
_QUERY_PAIR = re.compile(r"(^|[?&;])([^=&;?#\s]+)=([^&;#\s]*)")
REDACTED = "<redacted>"


@dataclass(frozen=True)
class ToolCall:
    """One scripted function call: ``name`` and its JSON ``arguments`` string."""

    name: str
    arguments: str
    id: str | None = None


#: Whom a scripted reply is for (``OpenAIServer.queue_reply(..., to=...)``).
REPLY_TARGETS = frozenset({"any", "root", "subcall"})
#: First words of a recursive run's system prompt (as in ``_rlm_play``): a root-model call.
_ROOT_MARK = "You are a recursive language model (RLM)"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: the first text block
        for block in content:
            if isinstance(block, Mapping) and isinstance(block.get("text"), str):
                return str(block["text"])
    return ""


def is_root_call(body: Any) -> bool:
    """Whether a request is a recursive run's root-model call (its system prompt says so):
    chat ``messages``, Responses ``input``/``instructions`` or the Messages API's ``system``."""
    if not isinstance(body, Mapping):
        return False
    if _text_of(body.get("system")).startswith(_ROOT_MARK):
        return True
    if _text_of(body.get("instructions")).startswith(_ROOT_MARK):
        return True
    for key in ("messages", "input"):
        items = body.get(key)
        if isinstance(items, list) and items and isinstance(items[0], Mapping):
            first = items[0]
            if first.get("role") in ("system", "developer") and _text_of(first.get("content")).startswith(
                _ROOT_MARK
            ):
                return True
    return False


@dataclass(frozen=True)
class Reply:
    """One scripted model reply: text, or tool calls, or both; and which requests it answers.

    ``to``: ``"any"`` (the next request), ``"root"`` (a recursive run's root-model call) or
    ``"subcall"`` (any other call: ``llm_query`` sub-calls); ``when``: a predicate on the
    request's JSON body that must also hold.
    """

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    to: str = "any"
    when: Callable[[Any], bool] | None = field(default=None, compare=False)

    def matches(self, body: Any) -> bool:
        if self.to != "any" and (self.to == "root") != is_root_call(body):
            return False
        if self.when is None:
            return True
        try:
            return bool(self.when(body))
        except Exception:  # a broken rule never matches (and never breaks the server)
            return False


@dataclass
class Fault:
    """One queued fault; ``times`` counts down as matching requests consume it."""

    kind: str
    times: int = 1
    retry_after: float | None = None
    delay: float | None = None
    after_chunks: int | None = None
    status: int | None = None
    path: str | None = None

    def matches(self, path: str, streaming: bool) -> bool:
        if self.path is not None and not path.endswith(self.path):
            return False
        return streaming or self.kind not in STREAM_FAULTS


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (secrets in headers and in the query string
    replaced by ``"<redacted>"``).

    ``path`` excludes the query string (kept in ``query``); ``body`` is the parsed JSON body,
    or ``None`` when the body was empty or not JSON.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""
    fault: str | None = field(default=None, compare=False)


def redact_headers(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Lower-case header names; secret-bearing values replaced by ``"<redacted>"``."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = REDACTED if key in _REDACTED_HEADERS else value
    return headers


def _redact_pair(match: re.Match[str]) -> str:
    lead, name, value = match.groups()
    if unquote_plus(name).strip().lower() in _REDACTED_PARAMS and value:
        return f"{lead}{name}={REDACTED}"
    return match.group(0)


def redact_query(text: str) -> str:
    """``text`` (a query string, a URL or a request line) with secret query values replaced by
    ``"<redacted>"``: ``api-key``, ``api_key``, ``key``, ``token``, ``access_token``, ``sig``,
    ``signature``, ``password``, ``secret`` (and ``apikey``, ``x-api-key``), any case."""
    if "=" not in text:
        return text
    return _QUERY_PAIR.sub(_redact_pair, text)


def _tool_call(spec: Any) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"a tool call must be a mapping with 'name' and 'arguments', not {spec!r}")
    function = spec.get("function", spec)
    name = function.get("name")
    arguments = function.get("arguments", "{}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tool call needs a non-empty 'name': {spec!r}")
    if not isinstance(arguments, str):
        raise TypeError(f"tool call 'arguments' must be a JSON string: {spec!r}")
    call_id = spec.get("id")
    return ToolCall(name=name, arguments=arguments, id=call_id if isinstance(call_id, str) else None)


def make_reply(
    text: str | None,
    tool_calls: Sequence[Any] | None,
    to: str = "any",
    when: Callable[[Any], bool] | None = None,
) -> Reply:
    if text is None and not tool_calls:
        raise ValueError("queue_reply needs text, tool_calls, or both")
    if text is not None and not isinstance(text, str):
        raise TypeError(f"reply text must be a str, not {type(text).__name__}")
    if to not in REPLY_TARGETS:
        raise ValueError(f"queue_reply to= must be one of {sorted(REPLY_TARGETS)}, got {to!r}")
    if when is not None and not callable(when):
        raise TypeError(f"queue_reply when= must be a function of the request body, got {when!r}")
    return Reply(text=text, tool_calls=tuple(_tool_call(c) for c in tool_calls or ()), to=to, when=when)


def make_fault(
    kind: str,
    *,
    times: int = 1,
    retry_after: float | None = None,
    delay: float | None = None,
    after_chunks: int | None = None,
    status: int | None = None,
    path: str | None = None,
) -> Fault:
    """A checked :class:`Fault` (``ValueError`` naming the bad argument)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be an int >= 1, got {times!r}")
    for name, value in (("retry_after", retry_after), ("delay", delay), ("after_chunks", after_chunks)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise ValueError(f"status must be an HTTP error code (400-599), got {status!r}")
    if path is not None and not isinstance(path, str):
        raise ValueError(f"path must be a string, got {path!r}")
    return Fault(kind, times, retry_after, delay, after_chunks, status, path)


#: Requests the log keeps by default: the most recent ones (a long-running server, e.g. the CLI's,
#: must not grow without bound: ~5 KB a request was 707 MB after 150k requests).
DEFAULT_MAX_REQUESTS = 1000


class Script:
    """Thread-safe queues of replies and faults, the request log (the most recent
    ``max_requests``), and id counters."""

    def __init__(self, max_requests: int = DEFAULT_MAX_REQUESTS) -> None:
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._faults: list[Fault] = []
        self._requests: deque[RecordedRequest] = deque(maxlen=max_requests)
        self._ids = itertools.count(1)

    def push_reply(self, reply: Reply) -> None:
        with self._lock:
            self._replies.append(reply)

    def pop_reply(self, body: Any = None) -> Reply | None:
        """The first queued reply (FIFO) that answers a request with this JSON ``body``."""
        with self._lock:
            for index, reply in enumerate(self._replies):
                if reply.matches(body):
                    del self._replies[index]
                    return reply
            return None

    def push_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, path: str, streaming: bool) -> Fault | None:
        """The first queued fault matching this request (FIFO), consuming one of its ``times``."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(path, streaming):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[index]
                    return fault
        return None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def pending(self) -> tuple[int, int]:
        """(queued replies, queued faults)."""
        with self._lock:
            return len(self._replies), len(self._faults)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self._faults.clear()
            self._requests.clear()
