"""Waits bounded by the run's deadline, and sub-calls that stop at once on cancel or Ctrl-C.

What ``RLMConfig.max_seconds`` guarantees is built here (see the README's runtime section):

* a model call (root or sub-call) gets the time left as its SDK request timeout, and the run
  stops waiting for it when the time is up. Async: ``asyncio.wait_for`` cancels the call.
  Sync: the call runs in a daemon thread the run joins with that timeout; a call still running
  then is abandoned, not stopped: each of its attempts times out after the time that was left
  when it started, the client's retries still apply, so it ends within
  ``(max_retries + 1) * time left + backoff``; what it spends is on its own ``chat`` span, not
  in the run's result or totals (``tests/recursive/test_abandoned_call.py``);
* a code execution gets ``min(wall_seconds, time left)`` as its wall limit, and a timer closes
  the sandbox when the time is up even while the code waits on a sub-call.

``fan_out`` runs a batch of sync sub-calls on daemon threads: when the caller's wait is
interrupted (``KeyboardInterrupt``, a deadline) it returns at once, starts no further call,
and the interpreter does not wait for the in-flight ones at exit (a ``ThreadPoolExecutor``
joins its threads both on leaving its ``with`` block and at exit).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

#: Extra time after the deadline before the timer closes a sandbox whose code still runs.
CLOSE_GRACE_S = 0.1
#: The smallest wait given to anything (a positive timeout; the budget check ends the run).
MIN_WAIT_S = 0.05
#: How often a waiting thread wakes up, so a Ctrl-C is handled while it waits.
WAKE_S = 0.1


class TimeUp(Exception):
    """The run's deadline passed while waiting (the caller turns it into status ``timeout``)."""


def with_timeout(create: Callable[..., T], timeout: float | None) -> Callable[..., T]:
    """``create`` (a provider's model-call callable) whose request times out after ``timeout``
    seconds: the SDK's per-request ``timeout`` option (``create`` itself when None)."""
    if timeout is None:
        return create
    return functools.partial(create, timeout=max(timeout, MIN_WAIT_S))


def wait_sync(fn: Callable[[], T], timeout: float | None) -> T:
    """``fn()``, but wait at most ``timeout`` seconds for it (then :class:`TimeUp`)."""
    if timeout is None:
        return fn()
    box: list[Any] = []
    error: list[BaseException] = []
    ctx = contextvars.copy_context()  # the call's span is a child of the current one

    def target() -> None:
        try:
            box.append(ctx.run(fn))
        except BaseException as exc:  # handed to the waiting thread, raised there
            error.append(exc)

    thread = threading.Thread(target=target, name="rlm-call", daemon=True)
    thread.start()
    deadline = time.monotonic() + max(timeout, MIN_WAIT_S)
    while thread.is_alive() and (now := time.monotonic()) < deadline:
        thread.join(min(WAKE_S, deadline - now))  # in slices, as fan_out waits
    if thread.is_alive():
        # Abandoned, not stopped (a sync SDK call cannot be interrupted): it goes on until its
        # request timeout, with the client's retries, and what it spends is on its span only.
        raise TimeUp(
            f"a model call outlived the run's time limit ({timeout:.2f} s left); it goes on in the "
            "background until its request timeout and is not counted"
        )
    if error:
        raise error[0]
    result: T = box[0]
    return result


async def wait_async(make: Callable[[], Awaitable[T]], timeout: float | None) -> T:
    if timeout is None:
        return await make()
    try:
        return await asyncio.wait_for(make(), max(timeout, MIN_WAIT_S))
    except TimeoutError:
        raise TimeUp(f"a model call outlived the run's time limit ({timeout:.2f} s left)") from None


def fan_out(fn: Callable[[Any], T], items: Sequence[Any], workers: int) -> list[T]:
    """``[fn(item) for item in items]`` on up to ``workers`` daemon threads, in order.

    The first error is raised (after which no further item starts); an interrupted wait
    (``KeyboardInterrupt``) returns at once without waiting for the calls in flight.
    """
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    lock = threading.Lock()
    done = threading.Event()
    state = {"next": 0, "finished": 0, "stop": False}

    def work(ctx: contextvars.Context) -> None:
        while True:
            with lock:
                index = state["next"]
                if state["stop"] or index >= len(items):
                    return
                state["next"] = index + 1
            try:
                results[index] = ctx.run(fn, items[index])
            except BaseException as exc:  # handed to the waiting thread, raised there
                with lock:
                    errors.append(exc)
                    state["stop"] = True
                done.set()
                return
            with lock:
                state["finished"] += 1
                if state["finished"] == len(items):
                    done.set()

    for _ in range(min(workers, len(items))):
        # A context copy per thread: each sub-call span is a child of the current execution.
        threading.Thread(
            target=work, args=(contextvars.copy_context(),), name="rlm-llm-query", daemon=True
        ).start()
    try:
        while not done.wait(WAKE_S):  # wakes up to run signal handlers (a simulated Ctrl-C too)
            continue
    except BaseException:
        with lock:
            state["stop"] = True
        raise
    if errors:
        raise errors[0]
    return results
