"""Calling one callback method: keyword plans, warnings, and async scheduling.

The delivery loop itself (``deliver`` / ``call``) lives in ``_span_processor.py``, beside the
processor that runs it on every GenAI span (one file fewer on an LLM call's path); this module
holds what it consults on a miss or a problem.

* Keywords only. A method without ``**kwargs`` gets just the keywords it names (the signature
  is inspected once per class and method); one that needs an argument we do not have is
  skipped with a warning, logged once.
* A method that raises is isolated: one warning per class and method (with the traceback),
  then the app and the other callbacks carry on.
* A method that returns an awaitable (``AsyncBaseCallback``) never blocks the app: on a thread
  with a running event loop it becomes a task of that loop; elsewhere it runs on the background
  loop thread of the processor that delivered it (:class:`AsyncDelivery`), whose
  ``force_flush()``/``shutdown()`` wait for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("rlm_toolkit.callbacks")


@dataclass(frozen=True)
class Plan:
    accepts_all: bool  # has **kwargs
    names: frozenset[str]  # keyword-passable parameter names
    required: frozenset[str]  # parameters without a default
    problem: str | None = None  # why it can never be called with keywords


_ANY = Plan(accepts_all=True, names=frozenset(), required=frozenset())


def make_plan(method: Any) -> Plan:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return _ANY  # builtins and C callables: try with everything
    names: set[str] = set()
    required: set[str] = set()
    accepts_all = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            accepts_all = True
        elif param.kind is param.VAR_POSITIONAL:
            continue
        elif param.kind is param.POSITIONAL_ONLY:
            if param.default is param.empty:
                return Plan(False, frozenset(), frozenset(), f"positional-only parameter {param.name!r}")
        else:
            names.add(param.name)
            if param.default is param.empty:
                required.add(param.name)
    return Plan(accepts_all, frozenset(names), frozenset(required))


# Every lock here is reentrant: a span may end on a thread that holds one (a signal handler, a
# callback making an instrumented call) and re-enter this module there. Abandoned streams are
# ended by genai/_reaper.py, never inside the garbage collector.
_plans_lock = threading.RLock()
# class -> {method name: plan}; weak so classes made on the fly do not pile up here.
PLANS: weakref.WeakKeyDictionary[type, dict[str, Plan]] = weakref.WeakKeyDictionary()
# class -> method names already warned about; also weak.
_warned: weakref.WeakKeyDictionary[type, set[str]] = weakref.WeakKeyDictionary()


def plan_for(cls: type, name: str, method: Any) -> Plan:
    """How to call ``cls.name`` with keywords (made once per class and method; the delivery
    loop reads :data:`PLANS` itself first and calls this only on a miss)."""
    per_class = PLANS.get(cls)
    plan = per_class.get(name) if per_class is not None else None
    if plan is None:
        plan = make_plan(method)
        with _plans_lock:
            PLANS.setdefault(cls, {})[name] = plan
    return plan


def warn_once(cb: object, name: str, message: str, exc: BaseException | None = None) -> None:
    cls = type(cb)
    with _plans_lock:
        seen = _warned.setdefault(cls, set())
        if name in seen:
            return
        seen.add(name)
    log.warning(
        "callback %s.%s %s (logged once; the app and other callbacks carry on)",
        cls.__qualname__,
        name,
        message,
        exc_info=exc,
    )


# -- async callbacks ------------------------------------------------------------------------

#: How long a processor's ``shutdown()`` waits for its async callbacks still running.
SHUTDOWN_WAIT_S = 5.0


async def _guard(awaitable: Awaitable[Any], cb: object, name: str) -> None:
    try:
        await awaitable
    except Exception as exc:
        warn_once(cb, name, "raised", exc)


class AsyncDelivery:
    """The async callbacks of one processor: their background loop and what is still running.

    Owned by the processor that delivers them, so its ``force_flush()`` and ``shutdown()`` wait
    for exactly its own callbacks (bounded by their timeout) and nothing delivered before exit
    is lost. On a thread with a running event loop a callback's coroutine becomes a task of
    that loop (the app's loop runs it); elsewhere it runs on this object's loop thread, started
    on first need. Thread-safe; ``schedule`` never blocks.
    """

    __slots__ = ("__weakref__", "_futures", "_lock", "_loop", "_pid", "_tasks")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        self._futures: set[concurrent.futures.Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs (the loop keeps weak ones)

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child has no thread
                self._futures.clear()
                self._tasks.clear()
                self._pid = os.getpid()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="rlm-toolkit-callbacks", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def schedule(self, awaitable: Awaitable[Any], cb: object, name: str) -> None:
        """Run ``awaitable`` without blocking this thread."""
        coro = _guard(awaitable, cb, name)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            task = running.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        future = asyncio.run_coroutine_threadsafe(coro, self._background_loop())
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._discard)

    def _discard(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait (up to ``timeout_s``) for callbacks running on the background loop; True if
        all finished. Tasks on the app's own loops finish with that loop."""
        with self._lock:
            pending = list(self._futures)
        if not pending:
            return True
        _, not_done = concurrent.futures.wait(pending, timeout=timeout_s)
        return not not_done

    def close(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """:meth:`flush`, then stop the background loop (a later callback starts a new one)."""
        done = self.flush(timeout_s)
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and done:
            loop.call_soon_threadsafe(loop.stop)
        return done

    def pending_tasks(self) -> list[asyncio.Task[None]]:
        """Async callbacks scheduled on app event loops and not finished yet."""
        return list(self._tasks)


#: For deliveries made outside any processor (none in the library; kept for direct callers).
SHARED = AsyncDelivery()


def flush(timeout_s: float | None = None) -> bool:
    """Wait for async callbacks delivered without an owner; True if all finished."""
    return SHARED.flush(timeout_s)


def pending_tasks() -> list[asyncio.Task[None]]:
    """Async callbacks delivered without an owner, on app loops, not finished yet."""
    return SHARED.pending_tasks()
