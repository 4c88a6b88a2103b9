"""An offline, OpenAI-compatible HTTP server for tests and demos.

``OpenAIServer`` speaks the real wire formats (chat completions with SSE streaming, the
Responses API, embeddings, legacy completions, models) on 127.0.0.1, answers with a
deterministic demo model or scripted replies, injects faults (429 with Retry-After, 5xx, 4xx,
slow answers, resets, cut or malformed streams) and records every request with secrets
redacted (``redact_query`` is that redaction, for your own logs). ``offline_if_no_key()`` points the
``openai`` client at it when no API key is set.
Only the standard library is used.
"""

from __future__ import annotations

from rlm_toolkit.testing._haystack import make_haystack
from rlm_toolkit.testing._offline import OFFLINE_API_KEY, offline_if_no_key
from rlm_toolkit.testing._script import FAULT_KINDS, RecordedRequest, redact_query
from rlm_toolkit.testing._server import OpenAIServer

__all__ = [
    "FAULT_KINDS",
    "OFFLINE_API_KEY",
    "OpenAIServer",
    "RecordedRequest",
    "make_haystack",
    "offline_if_no_key",
    "redact_query",
]
