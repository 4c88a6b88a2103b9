"""An async twin of the user's sync ``openai`` client, for ``RLM.arun`` -- or a clear refusal.

``arun`` must send what ``run`` sends: same URL (Azure deployment path and ``api-version``
included), same query, headers, timeout, retries and credentials. Only exact
``openai.OpenAI`` / ``openai.AzureOpenAI`` instances with the SDK's own HTTP transport can be
mirrored faithfully; anything else (a subclass, a custom ``http_client``, a ``provider`` or
workload identity) raises a one-line ``TypeError`` asking for ``async_client=`` instead of
silently sending different requests.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any


def _refuse(client: Any, why: str = "") -> TypeError:
    name = type(client).__qualname__
    reason = f" ({why})" if why else ""
    return TypeError(f"pass async_client=... to RLM(...) to use arun with a {name} client{reason}")


def _async_key(provider: Callable[[], str]) -> Callable[[], Awaitable[str]]:
    async def api_key() -> str:
        return provider()

    return api_key


def _common(client: Any) -> dict[str, Any]:
    """Constructor arguments shared by ``AsyncOpenAI`` and ``AsyncAzureOpenAI``."""
    from openai._base_client import SyncHttpxClientWrapper

    if type(getattr(client, "_client", None)) is not SyncHttpxClientWrapper:
        raise _refuse(client, "it has a custom http_client")
    if getattr(client, "_provider", None) is not None:
        raise _refuse(client, "it uses a provider")
    if getattr(client, "workload_identity", None) is not None:
        raise _refuse(client, "it uses a workload identity")
    key_provider = getattr(client, "_api_key_provider", None)
    return {
        "api_key": _async_key(key_provider) if key_provider is not None else client.api_key,
        "admin_api_key": getattr(client, "admin_api_key", None),
        "organization": client.organization,
        "project": client.project,
        "webhook_secret": getattr(client, "webhook_secret", None),
        "websocket_base_url": getattr(client, "websocket_base_url", None),
        "timeout": client.timeout,
        "max_retries": client.max_retries,
        "default_headers": dict(client._custom_headers),
        "default_query": dict(client._custom_query),
        "_strict_response_validation": client._strict_response_validation,
    }


def _azure(client: Any) -> Any:
    import openai
    from openai.lib.azure import API_KEY_SENTINEL

    options = _common(client)
    if options["api_key"] == API_KEY_SENTINEL:
        options["api_key"] = None  # token auth: the SDK's placeholder is not a key
    options["api_version"] = client._api_version
    options["azure_ad_token"] = client._azure_ad_token
    # The async client awaits the provider's result only when it is awaitable: a sync one works.
    options["azure_ad_token_provider"] = client._azure_ad_token_provider
    options["default_query"].pop("api-version", None)  # re-added from api_version
    if client._azure_endpoint is not None:
        options["azure_endpoint"] = str(client._azure_endpoint)
        options["azure_deployment"] = client._azure_deployment
    else:
        options["base_url"] = str(client.base_url)
    return openai.AsyncAzureOpenAI(**options)


def _plain(client: Any) -> Any:
    import openai

    options = _common(client)
    options["base_url"] = client.base_url
    return openai.AsyncOpenAI(**options)


def async_factory(client: Any) -> Callable[[], Any] | None:
    """A factory for the async twin of ``client``; None if it is not an ``openai`` client at all.

    Raises ``TypeError`` (when called) for an ``openai`` client that cannot be mirrored.
    """
    import openai

    if not isinstance(client, openai.OpenAI):
        return None
    if type(client) is openai.AzureOpenAI:
        return lambda: _azure(client)
    if type(client) is openai.OpenAI:
        return lambda: _plain(client)

    def refuse() -> Any:
        raise _refuse(client)

    return refuse


class PerLoop:
    """An async client built by ``factory`` once per event loop.

    An ``AsyncOpenAI`` keeps an HTTP connection pool bound to the loop it first ran on; after
    that loop closes (the end of an ``asyncio.run()``) every request fails with "Event loop is
    closed". So one ``RLM`` used across several ``asyncio.run()`` calls gets a fresh client for
    each new loop (the previous one is dropped: its loop, and so its connections, are gone).
    Outside a running loop the last client built is returned (or a first one).
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._client: Any = None

    def get(self) -> Any:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            bound = self._loop() if self._loop is not None else None
            if self._client is None or (loop is not None and bound is not loop):
                self._client = self._factory()
                self._loop = weakref.ref(loop) if loop is not None else None
            return self._client
