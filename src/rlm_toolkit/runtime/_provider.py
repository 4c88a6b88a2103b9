"""The runtime's model interface: how a run makes one model call, reporting through the
handler it is given.

The runtime knows no SDK. A provider (``rlm_toolkit._providers`` wires the ``openai`` one,
``instrumentation/openai/_runtime.py``) turns a client and the run's
:class:`~rlm_toolkit.genai.TelemetryHandler` into a chat-completions ``create`` callable that
makes the call and reports it (one inference span, its metrics and events) through that
handler -- whether or not the SDK is instrumented process-wide, and never twice.
``runtime/_calls.py`` reduces what it returns (a response or a stream of chunks) to a
:class:`~rlm_toolkit.runtime._strategy.Completion` with usage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rlm_toolkit.genai import TelemetryHandler

#: ``create(model=..., messages=..., **extra)`` -> a chat completion or a chunk stream.
Create = Callable[..., Any]
ACreate = Callable[..., Awaitable[Any]]


class ModelProvider(Protocol):
    """Makes a run's model calls through a client, reporting through a given handler.

    Called on the run's thread (sync) or event loop (async); the returned callables are used
    for the calls of one run. Neither method raises for a client it cannot instrument: it
    then returns the client's own method (the call is made, unreported).
    """

    def create(self, handler: TelemetryHandler, client: Any) -> Create: ...

    def acreate(self, handler: TelemetryHandler, client: Any) -> ACreate: ...

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any: ...

    def async_client(self, policy: Any, options: dict[str, Any]) -> Any: ...
