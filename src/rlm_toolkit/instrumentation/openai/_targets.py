"""The patch table: (module candidates, "Class.method", wrapper factory). ``_instrument`` and
``_uninstrument`` walk it symmetrically. A surface missing from the installed SDK is skipped.

The walker (wrap, defer to import, unwrap; coexistence with a peer's wrappers) is shared with
the anthropic instrumentation: ``instrumentation._stainless._patch``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.instrumentation._stainless._patch import Patcher, Target, fixed, is_ours  # noqa: F401 - re-exported
from rlm_toolkit.instrumentation._stainless._patch import resolve as _resolve
from rlm_toolkit.instrumentation.openai import _hooks, _specs
from rlm_toolkit.instrumentation.openai._wrappers import Wrapper, async_call, sync_call

Factory = Callable[[TelemetryHandler], Wrapper]

_CHAT_MODULES = ("openai.resources.chat.completions.completions", "openai.resources.chat.completions")
_RESPONSES_MODULES = ("openai.resources.responses.responses", "openai.resources.responses")
_CHAT_HELPERS = ("openai.lib.streaming.chat._completions", "openai.lib.streaming.chat")
_RESPONSE_HELPERS = ("openai.lib.streaming.responses._responses", "openai.lib.streaming.responses")

_BY_API = {
    spec.api: spec
    for spec in (
        _specs.CHAT_CREATE,
        _specs.CHAT_PARSE,
        _specs.RESPONSES_CREATE,
        _specs.RESPONSES_PARSE,
        _specs.EMBEDDINGS_CREATE,
        _specs.COMPLETIONS_CREATE,
    )
}
_BY_API[_specs.CHAT_STREAM] = _specs.CHAT_CREATE
_BY_API[_specs.RESPONSES_STREAM] = _specs.RESPONSES_CREATE


def _call(spec: _specs.ApiSpec, is_async: bool) -> Factory:
    if is_async:
        return lambda handler: async_call(handler, spec, ensure_body_hook)
    return lambda handler: sync_call(handler, spec, ensure_body_hook)


TARGETS: tuple[Target, ...] = (
    Target(_CHAT_MODULES, "Completions.create", _call(_specs.CHAT_CREATE, False)),
    Target(_CHAT_MODULES, "AsyncCompletions.create", _call(_specs.CHAT_CREATE, True)),
    Target(_CHAT_MODULES, "Completions.parse", _call(_specs.CHAT_PARSE, False)),
    Target(_CHAT_MODULES, "AsyncCompletions.parse", _call(_specs.CHAT_PARSE, True)),
    Target(_RESPONSES_MODULES, "Responses.create", _call(_specs.RESPONSES_CREATE, False)),
    Target(_RESPONSES_MODULES, "AsyncResponses.create", _call(_specs.RESPONSES_CREATE, True)),
    Target(_RESPONSES_MODULES, "Responses.parse", _call(_specs.RESPONSES_PARSE, False)),
    Target(_RESPONSES_MODULES, "AsyncResponses.parse", _call(_specs.RESPONSES_PARSE, True)),
    Target(("openai.resources.embeddings",), "Embeddings.create", _call(_specs.EMBEDDINGS_CREATE, False)),
    Target(("openai.resources.embeddings",), "AsyncEmbeddings.create", _call(_specs.EMBEDDINGS_CREATE, True)),
    Target(("openai.resources.completions",), "Completions.create", _call(_specs.COMPLETIONS_CREATE, False)),
    Target(
        ("openai.resources.completions",), "AsyncCompletions.create", _call(_specs.COMPLETIONS_CREATE, True)
    ),
    Target(
        _CHAT_HELPERS, "ChatCompletionStreamManager.__enter__", fixed(_hooks.label_enter(_specs.CHAT_STREAM))
    ),
    Target(
        _CHAT_HELPERS,
        "AsyncChatCompletionStreamManager.__aenter__",
        fixed(_hooks.label_aenter(_specs.CHAT_STREAM)),
    ),
    Target(_CHAT_HELPERS, "ChatCompletionStreamManager.__exit__", fixed(_hooks.helper_exit)),
    Target(_CHAT_HELPERS, "AsyncChatCompletionStreamManager.__aexit__", fixed(_hooks.helper_aexit)),
    Target(_CHAT_HELPERS, "ChatCompletionStream.close", fixed(_hooks.helper_close)),
    Target(_CHAT_HELPERS, "AsyncChatCompletionStream.close", fixed(_hooks.helper_aclose)),
    Target(
        _RESPONSE_HELPERS,
        "ResponseStreamManager.__enter__",
        fixed(_hooks.label_enter(_specs.RESPONSES_STREAM)),
    ),
    Target(
        _RESPONSE_HELPERS,
        "AsyncResponseStreamManager.__aenter__",
        fixed(_hooks.label_aenter(_specs.RESPONSES_STREAM)),
    ),
    Target(_RESPONSE_HELPERS, "ResponseStreamManager.__exit__", fixed(_hooks.helper_exit)),
    Target(_RESPONSE_HELPERS, "AsyncResponseStreamManager.__aexit__", fixed(_hooks.helper_aexit)),
    Target(_RESPONSE_HELPERS, "ResponseStream.close", fixed(_hooks.helper_close)),
    Target(_RESPONSE_HELPERS, "AsyncResponseStream.close", fixed(_hooks.helper_aclose)),
    Target(("openai._base_client",), "BaseClient._calculate_retry_timeout", fixed(_hooks.retry_timeout)),
)
#: The SDK retry loop's hook (the last target): also installed by the runtime's provider, so a
#: run over a client of the app's reports its retries without the SDK being instrumented.
RETRY_HOOK = TARGETS[-1]
#: Installed on first need (a call whose message content must be read from the request body,
#: see ``fill_input``), not by ``wrap_all``: the SDK calls ``_build_request`` once per HTTP
#: attempt, and a wrapper there costs every call ~14k instructions for a rare case.
BODY_HOOK = Target(
    ("openai._base_client",), "BaseClient._build_request", fixed(_hooks.build_request(_BY_API))
)


_PATCHER = Patcher("openai")


def resolve(target: Target, loaded_only: bool = False) -> tuple[ModuleType, Any, str] | None:
    """The (module, class, method) of ``target`` in the installed SDK, or None if absent."""
    return _resolve(target, loaded_only)


def wrap_all(handler: TelemetryHandler) -> int:
    """Patch every target whose module is imported, its wrapper reporting through ``handler``;
    defer the others to their import. Returns how many were patched now."""
    return _PATCHER.wrap_all(TARGETS, handler)


def ensure_body_hook() -> None:
    """Install :data:`BODY_HOOK` unless it is in place (called from a running call's start,
    before the SDK builds its request, so that very call is covered)."""
    _PATCHER.ensure(BODY_HOOK)


def ensure_retry_hook() -> None:
    """Install :data:`RETRY_HOOK` unless it is in place (a no-op outside a reported call)."""
    _PATCHER.ensure(RETRY_HOOK)


def unwrap_all() -> None:
    _PATCHER.unwrap_all((*TARGETS, BODY_HOOK))
