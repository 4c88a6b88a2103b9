"""``offline_if_no_key()``: run examples and demos without an API key."""

from __future__ import annotations

import logging
import os
import sys
import threading

from rlm_toolkit import environment_variables as env
from rlm_toolkit.testing._server import OpenAIServer

logger = logging.getLogger("rlm_toolkit.testing")

#: The placeholder key set when the offline server is used.
OFFLINE_API_KEY = "sk-offline-demo"

_lock = threading.Lock()
_server: OpenAIServer | None = None


def _token_delay() -> float:
    raw = os.environ.get(env.RLM_DEMO_TOKEN_DELAY, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # negative or NaN
        logger.warning("ignoring %s=%r: expected a number of seconds >= 0", env.RLM_DEMO_TOKEN_DELAY, raw)
        return 0.0
    return value


def offline_if_no_key(*, quiet: bool = False) -> OpenAIServer | None:
    """Use the bundled offline model server when ``OPENAI_API_KEY`` is not set.

    Without a key: start (once per process) an :class:`OpenAIServer` on 127.0.0.1 in a daemon
    thread, with the token delay from ``RLM_DEMO_TOKEN_DELAY`` (default 0); set
    ``OPENAI_BASE_URL`` to its base URL and ``OPENAI_API_KEY`` to ``"sk-offline-demo"``; print one
    notice line to stderr (unless ``quiet``); return the server. A later call returns the same
    server. With a key set: change nothing and return ``None``.
    """
    global _server
    with _lock:
        if _server is not None and _server.running and os.environ.get(env.OPENAI_API_KEY) == OFFLINE_API_KEY:
            os.environ[env.OPENAI_BASE_URL] = _server.base_url
            return _server
        if os.environ.get(env.OPENAI_API_KEY):
            return None
        if _server is None or not _server.running:
            _server = OpenAIServer(token_delay=_token_delay()).start()
        os.environ[env.OPENAI_BASE_URL] = _server.base_url
        os.environ[env.OPENAI_API_KEY] = OFFLINE_API_KEY
        if not quiet:
            print(
                f"rlm-toolkit: {env.OPENAI_API_KEY} is not set; using the bundled offline model server "
                f"at {_server.base_url}",
                file=sys.stderr,
            )
        return _server
