"""Prompt caching of the offline Messages API: ``cache_control`` breakpoints, writes and hits.

As the API does it: the prompt is read in the order tools, ``system``, ``messages``; a block
with ``cache_control: {"type": "ephemeral"}`` marks a breakpoint, and the prefix up to and
including it is cacheable. A request reads the longest cached prefix among its breakpoints and
writes the prefixes of the later ones; its usage reports the hit as
``cache_read_input_tokens``, the writes as ``cache_creation_input_tokens`` (split by TTL,
``ttl: "1h"`` or the default 5 minutes, in ``cache_creation``) and the uncached rest as
``input_tokens``. A hit refreshes the entry's TTL.

Offline simplifications (documented, not hidden): no minimum cacheable length (the API caches
only prefixes of 1024+ tokens on most models), no 20-block lookback limit, and a prefix's
token count is the offline tokenizer's count of its blocks (as it counts the request's input),
capped at the request's input.
Each server has its own cache (a server's lifetime is a test's).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._script import Script

_TTL_S = {"5m": 300.0, "1h": 3600.0}


class _Cache:
    """One server's cached prefixes: key -> monotonic expiry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, float] = {}


_CACHES: weakref.WeakKeyDictionary[Script, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(script: Script) -> _Cache:
    with _CACHES_LOCK:
        cache = _CACHES.get(script)
        if cache is None:
            cache = _CACHES[script] = _Cache()
        return cache


def _unit(prefix: str, block: Any, overhead: int) -> tuple[str, int, Any]:
    """A block's canonical text (its ``cache_control`` left out: the cache key), its tokens as
    the offline tokenizer counts the request's input (a text block's text; any other block's
    JSON), plus ``overhead``, and its ``cache_control``."""
    if isinstance(block, Mapping):
        control = block.get("cache_control")
        rest = {k: v for k, v in block.items() if k != "cache_control"}
        canonical = json.dumps(rest, sort_keys=True, default=str)
        text = rest.get("text")
        tokens = _model.count_tokens(text if isinstance(text, str) else canonical)
        return prefix + canonical, tokens + overhead, control
    return prefix + str(block), _model.count_tokens(str(block)) + overhead, None


def _units(body: Mapping[str, Any]) -> list[tuple[str, int, Any]]:
    """The prompt's blocks in the order the cache reads them."""
    out: list[tuple[str, int, Any]] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        out.append(_unit("tool:", tool, 0))
    system = body.get("system")
    blocks = system if isinstance(system, list) else ([system] if system is not None else [])
    for index, block in enumerate(blocks):
        out.append(_unit("system:", block, _model.MESSAGE_OVERHEAD if index == 0 else 0))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        role = f"{message.get('role')}:"
        content = message.get("content")
        for index, block in enumerate(content if isinstance(content, list) else [content]):
            out.append(_unit(role, block, _model.MESSAGE_OVERHEAD if index == 0 else 0))
    return out


def _ttl(control: Any) -> str | None:
    """``"5m"`` or ``"1h"`` for a breakpoint, None for a block that is not one."""
    if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
        return None
    return "1h" if control.get("ttl") == "1h" else "5m"


#: How many block boundaries before a breakpoint the API checks for a hit.
LOOKBACK = 20


def account(script: Script, model: str, body: Mapping[str, Any], total: int) -> tuple[int, int, int]:
    """(read, 5-minute write, 1-hour write) tokens of a request whose input is ``total``
    tokens, updating the server's cache. (0, 0, 0) without breakpoints.

    A top-level ``cache_control`` marks the last block (the API's automatic caching). A hit is
    the longest cached prefix ending at a breakpoint or at one of the ``LOOKBACK`` block
    boundaries before one; the breakpoints after it are written."""
    units = _units(body)
    top = body.get("cache_control")
    if units and _ttl(top) is not None and _ttl(units[-1][2]) is None:
        units[-1] = (units[-1][0], units[-1][1], top)
    digest = hashlib.sha256(model.encode())
    tokens = 0
    prefixes: list[tuple[str, int]] = []  # every block boundary: (prefix key, prefix tokens)
    breakpoints: list[tuple[int, str]] = []  # (boundary index, ttl)
    for text, count, control in units:
        digest.update(text.encode())
        digest.update(b"\0")
        tokens += count
        prefixes.append((digest.hexdigest(), min(tokens, total)))
        ttl = _ttl(control)
        if ttl is not None:
            breakpoints.append((len(prefixes) - 1, ttl))
    if not breakpoints:
        return 0, 0, 0
    cache = _cache_of(script)
    now = time.monotonic()
    with cache.lock:
        hit = -1  # the boundary of the longest live cached prefix
        for at, _ttl_of in reversed(breakpoints):
            for index in range(at, max(at - LOOKBACK, -1), -1):
                expiry = cache.entries.get(prefixes[index][0])
                if expiry is not None and expiry > now:
                    hit = max(hit, index)
                    break
        read = prefixes[hit][1] if hit >= 0 else 0
        writes = {"5m": 0, "1h": 0}
        done = read
        for at, ttl in breakpoints:
            if at > hit:
                writes[ttl] += prefixes[at][1] - done
                done = prefixes[at][1]
            cache.entries[prefixes[at][0]] = now + _TTL_S[ttl]
        if hit >= 0:  # a hit refreshes its entry
            cache.entries[prefixes[hit][0]] = max(cache.entries[prefixes[hit][0]], now + _TTL_S["5m"])
    return read, writes["5m"], writes["1h"]
