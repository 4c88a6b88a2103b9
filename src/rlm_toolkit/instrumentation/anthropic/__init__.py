"""Instrumentation of the ``anthropic`` SDK (in progress).

This package holds, for now, only the SDK-specific pure tables the instrumentation is built
from: request parameters -> span attributes (``_request``), a ``Message`` or an API error ->
response attributes and token counts (``_response``), and the stream-event accumulator
(``_events``). None of them imports ``anthropic``; nothing is wrapped and no span is made until
the instrumentor lands here on the shared seams.
"""

from __future__ import annotations

__all__: list[str] = []
