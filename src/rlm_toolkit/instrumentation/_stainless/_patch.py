"""The patch table walker: (module candidates, "Class.method", wrapper factory) targets wrapped
and unwrapped symmetrically, with surfaces of not-yet-imported modules patched on their import.

Coexistence with another instrumentation of the same SDK (a peer wrapt wrapper on the same
methods): both stay active and each makes its own span; whichever wrapped last is outermost.
``unwrap_all()`` removes only our wrapper, splicing it out of the chain if a peer wrapped on
top of it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import wrapt

from rlm_toolkit._safety import contain

_log = logging.getLogger("rlm_toolkit")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Factory = Callable[[Any], Wrapper]


@dataclass(frozen=True)
class Target:
    modules: tuple[str, ...]
    name: str  # "Class.method", or "function" for a module-level function
    factory: Factory


def fixed(wrapper: Wrapper) -> Factory:
    """A factory that ignores the handler (hooks that report through the running call)."""
    return lambda handler: wrapper


def resolve(target: Target, loaded_only: bool = False) -> tuple[ModuleType, Any, str] | None:
    """The (module, owner, attribute) of ``target`` in the installed SDK, or None if absent.
    The owner is the class, or the module itself for a module-level function.

    ``loaded_only``: look only in modules already imported (never import one).
    """
    class_name, _, method = target.name.rpartition(".")
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
        if not class_name:
            if callable(vars(module).get(method)):
                return module, module, method
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


def _chain(obj: Any) -> Iterator[Any]:
    while isinstance(obj, _PROXY):
        yield obj
        obj = getattr(obj, "__wrapped__", None)


class Patcher:
    """Wraps and unwraps one SDK's targets (one per instrumentation package).

    Surfaces whose module the app has not imported yet are patched when it is imported, by a
    post-import hook, instead of importing them ourselves: a bigger heap makes every cyclic GC
    pass of the app slower, and the SDKs' resource modules are large.
    """

    def __init__(self, sdk: str) -> None:
        self.sdk = sdk
        self.lock = threading.RLock()
        self._generation = 0  # bumped by unwrap_all: hooks left by an earlier instrumentation do nothing

    def wrap(self, target: Target, handler: Any, loaded_only: bool = False) -> bool:
        found = resolve(target, loaded_only)
        if found is None:
            _log.debug("rlm_toolkit: %s not in this %s version; skipped", target.name, self.sdk)
            return False
        _, owner, method = found
        if any(is_ours(obj) for obj in _chain(vars(owner)[method])):
            return False  # never double-wrap
        wrapt.wrap_function_wrapper(owner, method, _mark(target.factory(handler)))
        return True

    def _defer(self, target: Target, handler: Any, generation: int) -> None:
        def on_import(module: ModuleType) -> None:
            with self.lock:
                if generation != self._generation:
                    return
                try:
                    self.wrap(target, handler, loaded_only=True)
                except Exception as exc:  # an import of the app must never fail because of us
                    contain(f"{self.sdk} deferred patch", exc)

        for name in target.modules:
            wrapt.register_post_import_hook(on_import, name)

    def wrap_all(self, targets: Iterable[Target], handler: Any) -> int:
        """Patch every target whose module is imported, its wrapper reporting through
        ``handler``; defer the others to their import. Returns how many were patched now."""
        with self.lock:
            count = 0
            for target in targets:
                if any(name in sys.modules for name in target.modules):
                    count += self.wrap(target, handler)
                else:
                    self._defer(target, handler, self._generation)
            return count

    def ensure(self, target: Target, handler: Any = None) -> None:
        """Install ``target`` now unless it is in place."""
        with self.lock:
            self.wrap(target, handler)

    def unwrap_all(self, targets: Iterable[Target]) -> None:
        with self.lock:
            self._generation += 1
            for target in targets:
                unwrap(target)


def unwrap(target: Target) -> None:
    """Remove our wrapper of ``target`` (a peer's wrapper on top of it stays)."""
    found = resolve(target, loaded_only=True)  # a module never imported was never patched
    if found is None:
        return
    _, owner, method = found
    outer = vars(owner)[method]
    previous: Any = None
    for obj in _chain(outer):
        if is_ours(obj):
            if previous is None:
                setattr(owner, method, obj.__wrapped__)
            else:  # a peer wrapped on top of us: splice ourselves out of its chain
                previous.__wrapped__ = obj.__wrapped__
            break
        previous = obj
