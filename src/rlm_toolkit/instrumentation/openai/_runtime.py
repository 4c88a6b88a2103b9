"""The ``openai`` SDK as the runtime's model provider (``runtime/_provider.ModelProvider``).

A run's chat call goes through the same wrapper a process-wide instrumentation installs, but
built for the run's handler and applied to this one call: the handler is passed, never looked
up, and the SDK needs no process-wide patch for an ``RLM`` to report (so
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=rlm_openai`` leaves the app's own ``openai`` calls
alone). When the SDK is instrumented too, its wrapper sees the running invocation and steps
aside: one span per call.

Also the runtime's retry policy, applied through the SDK's own retry loop: a small client
subclass whose ``_calculate_retry_timeout`` applies the policy's backoff and reports the retry
on the running invocation (``_hooks.report_retry``). This module imports nothing from
``rlm_toolkit.runtime``: the policy is duck-typed (``max_retries``, ``respect_retry_after``,
``delay(index, retry_after)``).
"""

from __future__ import annotations

import logging
from typing import Any

from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.instrumentation._stainless._calls import HandlerWrappers
from rlm_toolkit.instrumentation.openai._hooks import report_retry
from rlm_toolkit.instrumentation.openai._specs import CHAT_CREATE
from rlm_toolkit.instrumentation.openai._targets import ensure_body_hook, ensure_retry_hook
from rlm_toolkit.instrumentation.openai._wrappers import Wrapper, async_call, sync_call

_log = logging.getLogger("rlm_toolkit")


class OpenAIProvider:
    """Chat completions through an ``openai`` client, reported through a given handler.

    Wrappers are built once per handler (a run's handler is cached by its ``RLM``, so this
    holds a handful); the per-call work is the instrumentation's own wrapper, nothing more.
    Thread-safe.
    """

    def __init__(self) -> None:
        self._wrappers = HandlerWrappers(_build)

    def create(self, handler: TelemetryHandler, client: Any) -> Any:
        """``client.chat.completions.create``, reporting through ``handler``."""
        wrapper = self._wrappers.sync(handler)
        completions = client.chat.completions
        method = completions.create

        def create(**kwargs: Any) -> Any:
            return wrapper(method, completions, (), kwargs)

        return create

    def acreate(self, handler: TelemetryHandler, client: Any) -> Any:
        """The async client's ``chat.completions.create``, reporting through ``handler``."""
        wrapper = self._wrappers.async_(handler)
        completions = client.chat.completions
        method = completions.create

        async def create(**kwargs: Any) -> Any:
            return await wrapper(method, completions, (), kwargs)

        return create

    def sync_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """An ``openai.OpenAI`` that retries by ``policy`` (and reports each retry)."""
        import openai

        client = policy_class(openai.OpenAI)(max_retries=policy.max_retries, **options)
        client._rlm_retry_policy = policy
        return client

    def async_client(self, policy: Any, options: dict[str, Any]) -> Any:
        """An ``openai.AsyncOpenAI`` that retries by ``policy`` (and reports each retry)."""
        import openai

        client = policy_class(openai.AsyncOpenAI)(max_retries=policy.max_retries, **options)
        client._rlm_retry_policy = policy
        return client


def _build(handler: TelemetryHandler) -> tuple[Wrapper, Wrapper]:
    ensure_retry_hook()  # for a client of the app's (ours override it and report themselves)
    return (
        sync_call(handler, CHAT_CREATE, ensure_body_hook, report=True),
        async_call(handler, CHAT_CREATE, ensure_body_hook, report=True),
    )


#: The one provider of this SDK (stateless but for its wrapper cache).
OPENAI = OpenAIProvider()


def _policy_timeout(client: Any, remaining_retries: int, options: Any, headers: Any) -> float:
    policy = client._rlm_retry_policy
    max_retries = options.get_max_retries(client.max_retries)
    retry_after = client._parse_retry_after_header(headers) if policy.respect_retry_after else None
    delay: float = policy.delay(max_retries - remaining_retries, retry_after)
    return delay


def _has_hook(base: type) -> bool:
    return callable(getattr(base, "_calculate_retry_timeout", None)) and callable(
        getattr(base, "_parse_retry_after_header", None)
    )


class _PolicyMixin:
    """Carries a retry policy across ``copy()``/``with_options()``."""

    _rlm_retry_policy: Any

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        new = super().copy(*args, **kwargs)  # type: ignore[misc]
        new._rlm_retry_policy = self._rlm_retry_policy
        return new

    with_options = copy

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        delay = _policy_timeout(self, remaining_retries, options, response_headers)
        # This override hides any hook on the SDK method: report the retry (with the delay
        # really used) on the running invocation. Never raises; a no-op outside a call.
        report_retry(self, delay, remaining_retries, options, response_headers)
        return delay


_CLASSES: dict[type, type] = {}


def policy_class(base: type) -> type:
    """``base`` with the retry policy applied (one subclass per SDK class, made once: creating
    many RLMs must not create classes); ``base`` itself when the SDK has no retry hook."""
    cls = _CLASSES.get(base)
    if cls is None:
        if _has_hook(base):
            cls = type(f"Retrying{base.__name__}", (_PolicyMixin, base), {"__module__": __name__})
        else:
            _log.debug("rlm_toolkit: openai %s has no _calculate_retry_timeout; using its backoff", base)
            cls = base
        _CLASSES[base] = cls
    return cls
