"""The patch table: (module candidates, "Class.method", wrapper factory). ``_instrument`` and
``_uninstrument`` walk it symmetrically. A surface missing from the installed SDK is skipped.

Coexistence with another OpenAI instrumentation (a peer wrapt wrapper on the same methods):
both stay active and each makes its own span; whichever wrapped last is outermost, so its span
is the parent of the other's. ``uninstrument()`` removes only our wrapper, splicing it out of
the chain if a peer wrapped on top of it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import wrapt

from rlm_toolkit._safety import contain
from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.instrumentation.openai import _hooks, _specs
from rlm_toolkit.instrumentation.openai._wrappers import Wrapper, async_call, sync_call

_log = logging.getLogger("rlm_toolkit")

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


@dataclass(frozen=True)
class Target:
    modules: tuple[str, ...]
    name: str  # "Class.method"
    factory: Factory


def _call(spec: _specs.ApiSpec, is_async: bool) -> Factory:
    if is_async:
        return lambda handler: async_call(handler, spec, ensure_body_hook)
    return lambda handler: sync_call(handler, spec, ensure_body_hook)


def _fixed(wrapper: Wrapper) -> Factory:
    return lambda handler: wrapper


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
        _CHAT_HELPERS, "ChatCompletionStreamManager.__enter__", _fixed(_hooks.label_enter(_specs.CHAT_STREAM))
    ),
    Target(
        _CHAT_HELPERS,
        "AsyncChatCompletionStreamManager.__aenter__",
        _fixed(_hooks.label_aenter(_specs.CHAT_STREAM)),
    ),
    Target(_CHAT_HELPERS, "ChatCompletionStreamManager.__exit__", _fixed(_hooks.helper_exit)),
    Target(_CHAT_HELPERS, "AsyncChatCompletionStreamManager.__aexit__", _fixed(_hooks.helper_aexit)),
    Target(_CHAT_HELPERS, "ChatCompletionStream.close", _fixed(_hooks.helper_close)),
    Target(_CHAT_HELPERS, "AsyncChatCompletionStream.close", _fixed(_hooks.helper_aclose)),
    Target(
        _RESPONSE_HELPERS,
        "ResponseStreamManager.__enter__",
        _fixed(_hooks.label_enter(_specs.RESPONSES_STREAM)),
    ),
    Target(
        _RESPONSE_HELPERS,
        "AsyncResponseStreamManager.__aenter__",
        _fixed(_hooks.label_aenter(_specs.RESPONSES_STREAM)),
    ),
    Target(_RESPONSE_HELPERS, "ResponseStreamManager.__exit__", _fixed(_hooks.helper_exit)),
    Target(_RESPONSE_HELPERS, "AsyncResponseStreamManager.__aexit__", _fixed(_hooks.helper_aexit)),
    Target(_RESPONSE_HELPERS, "ResponseStream.close", _fixed(_hooks.helper_close)),
    Target(_RESPONSE_HELPERS, "AsyncResponseStream.close", _fixed(_hooks.helper_aclose)),
    Target(("openai._base_client",), "BaseClient._calculate_retry_timeout", _fixed(_hooks.retry_timeout)),
)
#: The SDK retry loop's hook (the last target): also installed by the runtime's provider, so a
#: run over a client of the app's reports its retries without the SDK being instrumented.
RETRY_HOOK = TARGETS[-1]
#: Installed on first need (a call whose message content must be read from the request body,
#: see ``fill_input``), not by ``wrap_all``: the SDK calls ``_build_request`` once per HTTP
#: attempt, and a wrapper there costs every call ~14k instructions for a rare case.
BODY_HOOK = Target(
    ("openai._base_client",), "BaseClient._build_request", _fixed(_hooks.build_request(_BY_API))
)


def resolve(target: Target, loaded_only: bool = False) -> tuple[ModuleType, type, str] | None:
    """The (module, class, method) of ``target`` in the installed SDK, or None if absent.

    ``loaded_only``: look only in modules already imported (never import one).
    """
    class_name, method = target.name.split(".")
    for module_name in target.modules:
        if loaded_only:
            module = sys.modules.get(module_name)
            if module is None:
                continue
        else:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and method in vars(cls):
            return module, cls, method
    return None


_MARK = "_rlm_toolkit_wrapper"
# wrapt 2.x: FunctionWrapper derives from the C base proxy, not from ``wrapt.ObjectProxy``.
_PROXY: type = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def _mark(fn: Wrapper) -> Wrapper:
    """Tag a wrapper function as ours, so unwrapping never removes a peer's wrapper."""
    setattr(fn, _MARK, True)
    return fn


def is_ours(obj: Any) -> bool:
    return isinstance(obj, wrapt.FunctionWrapper) and getattr(obj._self_wrapper, _MARK, False)


def _wrap(target: Target, handler: Any, loaded_only: bool = False) -> bool:
    found = resolve(target, loaded_only)
    if found is None:
        _log.debug("rlm_toolkit: %s not in this openai version; skipped", target.name)
        return False
    _, cls, method = found
    if any(is_ours(obj) for obj in _chain(vars(cls)[method])):
        return False  # never double-wrap
    wrapt.wrap_function_wrapper(cls, method, _mark(target.factory(handler)))
    return True


# Surfaces whose module the app has not imported yet (the Responses API, embeddings, legacy
# completions, the Responses stream helpers in a chat-only app) are patched when it is
# imported, by a post-import hook, instead of importing them ourselves: a bigger heap makes
# every cyclic GC pass of the app slower, and those modules are large (measured: ~12k
# instructions per chat call and ~3k per stream chunk of the SDK's own work).
_lock = threading.RLock()
_generation = 0  # bumped by unwrap_all: hooks left by an earlier instrumentation do nothing


def _loaded(target: Target) -> bool:
    return any(name in sys.modules for name in target.modules)


def _defer(target: Target, handler: TelemetryHandler, generation: int) -> None:
    def on_import(module: ModuleType) -> None:
        with _lock:
            if generation != _generation:
                return
            try:
                _wrap(target, handler, loaded_only=True)
            except Exception as exc:  # an import of the app must never fail because of us
                contain("openai deferred patch", exc)

    for name in target.modules:
        wrapt.register_post_import_hook(on_import, name)


def wrap_all(handler: TelemetryHandler) -> int:
    """Patch every target whose module is imported, its wrapper reporting through ``handler``;
    defer the others to their import. Returns how many were patched now."""
    with _lock:
        count = 0
        for target in TARGETS:
            if _loaded(target):
                count += _wrap(target, handler)
            else:
                _defer(target, handler, _generation)
        return count


def ensure_body_hook() -> None:
    """Install :data:`BODY_HOOK` unless it is in place (called from a running call's start,
    before the SDK builds its request, so that very call is covered)."""
    with _lock:
        _wrap(BODY_HOOK, None)


def ensure_retry_hook() -> None:
    """Install :data:`RETRY_HOOK` unless it is in place (a no-op outside a reported call)."""
    with _lock:
        _wrap(RETRY_HOOK, None)


def _chain(obj: Any) -> Iterator[Any]:
    while isinstance(obj, _PROXY):
        yield obj
        obj = getattr(obj, "__wrapped__", None)


def unwrap_all() -> None:
    global _generation
    with _lock:
        _generation += 1
        for target in (*TARGETS, BODY_HOOK):
            _unwrap(target)


def _unwrap(target: Target) -> None:
    found = resolve(target, loaded_only=True)  # a module never imported was never patched
    if found is None:
        return
    _, cls, method = found
    outer = vars(cls)[method]
    previous: Any = None
    for obj in _chain(outer):
        if is_ours(obj):
            if previous is None:
                setattr(cls, method, obj.__wrapped__)
            else:  # a peer wrapped on top of us: splice ourselves out of its chain
                previous.__wrapped__ = obj.__wrapped__
            break
        previous = obj
