"""The server's control surface: script it over HTTP from another process, on the same port.

``POST /_rlm/replies``, ``POST /_rlm/faults``, ``GET /_rlm/requests``, ``GET /_rlm/pending``,
``POST /_rlm/reset`` (see :class:`~rlm_toolkit.testing.OpenAIServer`). The OpenAI API has no
path under ``/_rlm/``, so nothing an SDK sends can reach it by accident.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from rlm_toolkit.testing._script import Script, make_fault, make_reply

PREFIX: Final = "/_rlm/"
_FAULT_ARGS = frozenset({"kind", "times", "retry_after", "delay", "after_chunks", "status", "path"})


def _error(message: str) -> tuple[int, Any]:
    return 400, {"error": {"message": message, "type": "invalid_request_error"}}


def handle(script: Script, method: str, path: str, body: Any, bad_json: bool) -> tuple[int, Any]:
    """Answer one control request: (HTTP status, JSON body)."""
    action = path[len(PREFIX) :].rstrip("/")
    routes = {
        ("POST", "replies"),
        ("POST", "faults"),
        ("GET", "requests"),
        ("GET", "pending"),
        ("POST", "reset"),
    }
    if (method, action) not in routes:
        known = ", ".join(f"{m} {PREFIX}{a}" for m, a in sorted(routes, key=lambda r: r[1]))
        return 404, {"error": {"message": f"no control endpoint {method} {path} (known: {known})"}}
    if bad_json:
        return _error("the body is not JSON")
    if method == "POST" and action != "reset" and not isinstance(body, dict):
        return _error(f"POST {path} needs a JSON object body")
    try:
        if action == "replies":
            unknown = set(body) - {"text", "tool_calls", "to"}
            if unknown:
                return _error(f"unknown fields {sorted(unknown)} (expected text, tool_calls, to)")
            script.push_reply(make_reply(body.get("text"), body.get("tool_calls"), body.get("to", "any")))
        elif action == "faults":
            unknown = set(body) - _FAULT_ARGS
            if unknown or "kind" not in body:
                return _error(f"a fault needs 'kind' and takes only {sorted(_FAULT_ARGS)}")
            script.push_fault(make_fault(**body))
        elif action == "reset":
            script.reset()
        elif action == "requests":
            return 200, {"data": [dataclasses.asdict(r) for r in script.requests()]}
    except (TypeError, ValueError) as exc:
        return _error(str(exc))
    replies, faults = script.pending()
    return 200, {"replies": replies, "faults": faults}
