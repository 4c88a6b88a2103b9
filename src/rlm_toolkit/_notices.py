"""One-time notices on stderr for telemetry we know we cannot give (a gap is never silent).

Each notice is printed at most once per process, whoever triggers it: the point is that the user
learns the gap exists, not how often it happens.
"""

from __future__ import annotations

import sys
import threading

PREFIX = "rlm-toolkit: "
#: ``with_streaming_response``: the SDK hands the unread body to the app, after our span ended.
RAW_RESPONSE = (
    "with_streaming_response calls are traced without response attributes or token usage "
    "(the body is read by your code after the call's span ended); use the plain or stream=True call to get them"
)

_said: set[str] = set()
_lock = threading.Lock()


def say_once(notice: str) -> None:
    """Print ``notice`` on stderr unless it was printed before in this process."""
    with _lock:
        if notice in _said:
            return
        _said.add(notice)
    try:
        sys.stderr.write(f"{PREFIX}{notice}\n")
    except Exception:  # a closed stderr must not break the app's call
        return
