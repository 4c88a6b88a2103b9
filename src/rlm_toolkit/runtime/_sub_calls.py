"""Sub-calls on a client of their own (maybe another SDK), and ``RLM.from_anthropic``'s options.

A run may mix providers: the root on Anthropic and the ``llm_query`` sub-calls on an
OpenAI-compatible server, or the reverse. ``sub_client=`` (and ``sub_async_client=`` for
``arun``) names the client that serves every call whose model is not the root's; its SDK
decides the provider (``rlm_toolkit._providers.provider_for``). Every call reports through the
same run handler, so the tree, the cost and the budgets stay one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rlm_toolkit._providers import provider_for
from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.runtime._async_client import PerLoop, async_factory
from rlm_toolkit.runtime._provider import AsyncModelCall, ModelCall
from rlm_toolkit.runtime._retry import RetryPolicy

#: ``RLM.from_anthropic`` options passed to ``anthropic.Anthropic`` / ``AsyncAnthropic``.
ANTHROPIC_CLIENT_OPTIONS = ("api_key", "auth_token", "base_url", "default_headers", "timeout")
ANTHROPIC_OPTIONS = tuple(sorted((*ANTHROPIC_CLIENT_OPTIONS, "max_retries", "max_tokens", "retry")))


def anthropic_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], RetryPolicy]:
    """(kwargs for the SDK client, with ``max_tokens``; retry policy), or a one-line error."""
    unknown = sorted(set(options) - set(ANTHROPIC_OPTIONS))
    if unknown:
        raise TypeError(
            f"RLM.from_anthropic() got an unexpected option {unknown[0]!r}; "
            f"valid options: {', '.join(ANTHROPIC_OPTIONS)}"
        )
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(
            f"RLM.from_anthropic() option 'retry' must be a RetryPolicy, got {type(retry).__name__}"
        )
    policy = retry if retry is not None else RetryPolicy()
    if "max_retries" in options:
        if retry is not None and options["max_retries"] != policy.max_retries:
            raise ValueError(
                f"RLM.from_anthropic() got max_retries={options['max_retries']!r} and "
                f"retry.max_retries={policy.max_retries}; pass one"
            )
        policy = dataclasses.replace(policy, max_retries=options["max_retries"])
    max_tokens = options.get("max_tokens", 4096)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"RLM.from_anthropic() option 'max_tokens' must be an int >= 1, got {max_tokens!r}")
    kwargs = {k: options[k] for k in ANTHROPIC_CLIENT_OPTIONS if k in options}
    kwargs["max_tokens"] = max_tokens
    return kwargs, policy


class SubCalls:
    """The client(s) serving sub-calls for another model than the root's."""

    __slots__ = ("_async_client", "_client", "_twin")

    def __init__(self, client: Any, async_client: Any) -> None:
        for name, value in (("sub_client", client), ("sub_async_client", async_client)):
            if isinstance(value, type):
                raise TypeError(f"RLM() {name} must be an instance, got the class {value.__qualname__}")
            if isinstance(value, str):
                raise TypeError(
                    f"RLM() {name} takes a client (openai.OpenAI(...), anthropic.Anthropic(...)); "
                    f"for a model name use sub_model={value!r}"
                )
        self._client = client
        self._async_client = async_client
        # ``arun`` without ``sub_async_client=``: the async twin of an ``openai`` sub client
        # (one per event loop, as for the root's), when it can be mirrored faithfully.
        factory = async_factory(client) if async_client is None and client is not None else None
        self._twin = PerLoop(factory) if factory is not None else None

    def create(self, handler: TelemetryHandler) -> ModelCall:
        if self._client is None:
            raise TypeError("this RLM has sub_async_client= only; pass sub_client=... to use run()")
        return provider_for(self._client).create(handler, self._client)

    def acreate(self, handler: TelemetryHandler) -> AsyncModelCall:
        client = self._async_client
        if client is None and self._twin is not None:
            client = self._twin.get()
        if client is None:
            raise TypeError(
                "this RLM has no async client for its sub-calls; pass sub_async_client=... to use arun()"
            )
        return provider_for(client).acreate(handler, client)


def sub_calls(client: Any, async_client: Any, sub_model: str | None) -> SubCalls | None:
    """The sub-call clients, or None; a one-line TypeError without a ``sub_model``."""
    if client is None and async_client is None:
        return None
    if sub_model is None:
        raise TypeError("RLM() sub_client= serves the sub-calls' model: pass sub_model=<model name> too")
    return SubCalls(client, async_client)
