"""Drive a :class:`~rlm_toolkit.runtime._recursive.RecursivePlan`: model calls, sandbox, sub-calls.

One :class:`Tree` per root run holds what the root and its nested ``rlm_query`` runs share: the
config, the :class:`Budget`, the telemetry (:class:`Steps`) and how to call the model.

Threads. ``Sandbox.execute`` calls the query handler on the thread that called it, while the
``execute_tool`` span is current there, so every sub-call span is a child of the execution
that asked. ``llm_query_batched`` fans out to a bounded thread pool (sync) or to tasks on the
run's event loop (async), each with a copy of that context. In ``arun`` the blocking sandbox
calls run in a thread of the run's own (with a copy of the context); the handler then hands
each sub-call back to the event loop, so ``arun`` uses only the async client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.attributes import GEN_AI_USAGE_COST, RLM_RUN_ITERATIONS, RLM_RUN_STATUS
from rlm_toolkit.runtime._bounds import CLOSE_GRACE_S, MIN_WAIT_S, TimeUp, fan_out, wait_async, wait_sync
from rlm_toolkit.runtime._budget import STATUS_ERROR, Budget, BudgetExceeded, RLMConfig
from rlm_toolkit.runtime._drive import cost_of
from rlm_toolkit.runtime._exit import OpenRun
from rlm_toolkit.runtime._prestart import Prestart, start_with
from rlm_toolkit.runtime._recursive import Execute, Outcome, RecursivePlan
from rlm_toolkit.runtime._result import RLMResult, Usage
from rlm_toolkit.runtime._run_span import RunSpan
from rlm_toolkit.runtime._steps import Steps
from rlm_toolkit.runtime._strategy import Completion, LLMRequest
from rlm_toolkit.sandbox import ExecutionResult, ReadySandboxes, Sandbox, SandboxLimits

T = TypeVar("T")
Messages = list[dict[str, Any]]


class Tree:
    """What a root run and its nested runs share. ``call`` (sync) or ``acall`` (async) makes
    one instrumented chat call; ``loop`` is the event loop of an ``arun``."""

    def __init__(
        self,
        config: RLMConfig,
        model: str,
        steps: Steps,
        *,
        call: Callable[[Messages, str, float | None], Completion] | None = None,
        acall: Callable[[Messages, str, float | None], Awaitable[Completion]] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        ready: ReadySandboxes | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.sub_model = config.sub_model or model
        self.budget = Budget(config, own_models=frozenset((model, self.sub_model)))
        self.allowed_models = frozenset((model, self.sub_model, *config.allowed_models))
        self.steps = steps
        self._call = call
        self._acall = acall
        self.loop = loop
        self.ready = ready
        #: Spans and sandboxes open right now, ended by the exit hooks if the process ends.
        self.open = OpenRun()

    def complete(self, messages: Messages, model: str) -> Completion:
        """One model call, waited for at most the run's time left (request timeout included)."""
        call = self._call
        assert call is not None
        left = self.budget.seconds_left()
        try:
            completion = wait_sync(lambda: call(messages, model, left), left)
        except TimeUp as exc:
            self.budget.time_up(str(exc))
            raise
        self.budget.record(completion, model, cost_of(completion, model))
        return completion

    async def acomplete(self, messages: Messages, model: str) -> Completion:
        acall = self._acall
        assert acall is not None
        left = self.budget.seconds_left()
        try:
            completion = await wait_async(lambda: acall(messages, model, left), left)
        except TimeUp as exc:
            self.budget.time_up(str(exc))
            raise
        self.budget.record(completion, model, cost_of(completion, model))
        return completion

    def new_sandbox(self) -> tuple[Sandbox, Callable[[], None] | None]:
        """A fresh sandbox for one run (each execution's wall limit is set from the time left),
        and what to wait for before driving it: the one ``ready`` keeps started, if any (it ran
        nothing), else a new one."""
        limits = self.config.sandbox_limits or SandboxLimits()
        ready = self.ready
        if ready is not None and ready.limits == limits:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: the run starts its own
                box, thread = ready._take()
                return box, thread.join
        return Sandbox(limits=limits), None


def _as_text(context: Any) -> str:
    if isinstance(context, str):
        return context
    if isinstance(context, list) and all(isinstance(item, str) for item in context):
        return "\n".join(context)
    return json.dumps(context, default=str, ensure_ascii=False)


def _as_context(context: Any) -> str | list[str] | dict[str, Any]:
    """A context the code passed to ``rlm_query`` (any JSON value) in a shape a sandbox takes."""
    if isinstance(context, str):
        return context
    if isinstance(context, list) and all(isinstance(item, str) for item in context):
        return context
    if isinstance(context, dict) and all(isinstance(key, str) for key in context):
        return context
    return _as_text(context)


class _Queries:
    """The sandbox's ``QueryHandler``: sub-calls made by the code of a run at ``depth``."""

    def __init__(self, tree: Tree, depth: int) -> None:
        self.tree = tree
        self.depth = depth

    def llm_query(self, prompts: list[str], model: str | None) -> list[str]:
        tree = self.tree
        if model is not None and model not in tree.allowed_models:
            allowed = ", ".join(sorted(tree.allowed_models))
            raise ValueError(
                f"llm_query: model {model!r} is not allowed here (allowed: {allowed}); "
                "the app can allow more with RLMConfig(allowed_models=(...))"
            )
        tree.budget.take_subcalls(len(prompts))
        chosen = model or tree.sub_model
        return self._fan_out([[{"role": "user", "content": p}] for p in prompts], chosen)

    def rlm_query(self, prompt: str, context: Any) -> str:
        depth = self.depth + 1
        if context is None or depth > self.tree.config.max_depth:
            # Past the depth limit (or with nothing to recurse over) it is a plain sub-call.
            text = prompt if context is None else f"{prompt}\n\nContext:\n{_as_text(context)}"
            return self.llm_query([text], None)[0]
        self.tree.budget.take_subcalls(1)
        return self._nested(prompt, _as_context(context), depth)

    def _fan_out(self, batches: list[Messages], model: str) -> list[str]:
        raise NotImplementedError

    def _nested(self, prompt: str, context: Any, depth: int) -> str:
        raise NotImplementedError


class SyncQueries(_Queries):
    def _one(self, messages: Messages, model: str) -> str:
        budget = self.tree.budget
        budget.check()
        share = budget.reserve()  # batched calls in flight count before they are sent
        try:
            return self.tree.complete(messages, model).content
        finally:
            budget.release(share)

    def _fan_out(self, batches: list[Messages], model: str) -> list[str]:
        if len(batches) == 1:
            return [self._one(batches[0], model)]
        # Daemon threads: a Ctrl-C (or an error) returns at once, without waiting for calls in flight.
        return fan_out(lambda m: self._one(m, model), batches, self.tree.config.batch_parallelism)

    def _nested(self, prompt: str, context: Any, depth: int) -> str:
        tree = self.tree
        span = tree.steps.nested_run(prompt, context, depth)
        before = tree.budget.totals()
        plan = RecursivePlan(prompt, context, tree.config)
        try:
            with span.current(), tree.open.span(span):
                outcome = run_sync(tree, plan, context, depth, span)
        except BaseException as exc:
            span.fail(exc, failed_run(tree, plan, span, exc, before)[1])
            raise
        span.finish(
            run_result(tree, plan, outcome, span, before), tree.steps.ended(outcome, tree.budget, root=False)
        )
        return outcome.answer


class AsyncQueries(_Queries):
    """Called on the worker thread of an ``arun``'s sandbox call; runs the work on the run's loop.

    The tasks it starts (sub-calls, nested runs) are kept until they end, so a cancelled run
    cancels them at once (:meth:`cancel`) instead of waiting for them.
    """

    def __init__(self, tree: Tree, depth: int) -> None:
        super().__init__(tree, depth)
        self._tasks: set[asyncio.Task[Any]] = set()  # touched on the loop thread only

    def cancel(self) -> None:
        """Cancel every sub-call and nested run in flight (on the loop thread)."""
        for task in list(self._tasks):
            task.cancel()

    def _on_loop(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self.tree.loop
        assert loop is not None
        ctx = contextvars.copy_context()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:  # runs on the loop, inside ctx: the task inherits it
            task = loop.create_task(make())
            self._tasks.add(task)

            def finished(t: asyncio.Task[T]) -> None:
                self._tasks.discard(t)
                if t.cancelled():
                    done.cancel()
                elif t.exception() is not None:
                    done.set_exception(t.exception())
                else:
                    done.set_result(t.result())

            task.add_done_callback(finished)

        loop.call_soon_threadsafe(start, context=ctx)
        return done.result()

    def _fan_out(self, batches: list[Messages], model: str) -> list[str]:
        tree = self.tree
        limit = asyncio.Semaphore(tree.config.batch_parallelism) if len(batches) > 1 else None

        async def reserved(messages: Messages) -> str:
            budget = tree.budget
            budget.check()
            share = budget.reserve()  # batched calls in flight count before they are sent
            try:
                return (await tree.acomplete(messages, model)).content
            finally:
                budget.release(share)

        async def one(messages: Messages) -> str:
            if limit is None:
                return await reserved(messages)
            async with limit:
                return await reserved(messages)

        async def all_of() -> list[str]:
            return list(await asyncio.gather(*(one(m) for m in batches)))

        return self._on_loop(all_of)

    def _nested(self, prompt: str, context: Any, depth: int) -> str:
        tree = self.tree

        async def nested() -> str:
            span = tree.steps.nested_run(prompt, context, depth)
            before = tree.budget.totals()
            plan = RecursivePlan(prompt, context, tree.config)
            try:
                with span.current(), tree.open.span(span):
                    outcome = await run_async(tree, plan, context, depth, span)
            except BaseException as exc:
                span.fail(exc, failed_run(tree, plan, span, exc, before)[1])
                raise
            result = run_result(tree, plan, outcome, span, before)
            span.finish(result, tree.steps.ended(outcome, tree.budget, root=False))
            return outcome.answer

        return self._on_loop(nested)


def _execute(tree: Tree, sandbox: Sandbox, step: Execute, handler: _Queries, depth: int) -> ExecutionResult:
    left = tree.budget.seconds_left()
    timer: threading.Timer | None = None
    if left is not None:
        # The execution's wall limit is the time left; past it (plus a grace) a timer closes the
        # sandbox, which also ends code that waits on a sub-call (wall time excludes that wait).
        base = tree.config.sandbox_limits or SandboxLimits()
        wall = max(min(base.wall_seconds, left), MIN_WAIT_S)
        sandbox.limits = dataclasses.replace(sandbox.limits, wall_seconds=wall)
        timer = threading.Timer(wall + CLOSE_GRACE_S, sandbox.close)
        timer.daemon = True
        timer.start()
    try:
        with tree.steps.execution(step, depth, sandbox.level) as tool, tree.open.span(tool):
            result = sandbox.execute(step.code, handler)
            tool.finish(result)
    finally:
        if timer is not None:
            timer.cancel()
    return result


def run_sync(tree: Tree, plan: RecursivePlan, context: Any, depth: int, span: RunSpan) -> Outcome:
    """Run ``plan`` to its outcome with a fresh sandbox holding ``context`` (closed after)."""
    tree.budget.reach(depth)
    sandbox, after = tree.new_sandbox()
    with tree.open.sandbox(sandbox):
        # The worker starts and loads the context while the first model call is in flight.
        prestart = Prestart(sandbox, context, after)
        try:
            handler = SyncQueries(tree, depth)
            steps = plan.steps()
            try:
                step = next(steps)
                while True:
                    tree.budget.check()  # before each step, so a final answer is never thrown away
                    if isinstance(step, LLMRequest):
                        reply: Any = tree.complete(step.messages, tree.model)
                    else:
                        if not prestart.waited:  # the strategy's first need of the REPL
                            tree.steps.sandbox_level(span, prestart.wait().level)
                        reply = _execute(tree, sandbox, step, handler, depth)
                    step = steps.send(reply)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                return outcome
            except BudgetExceeded as exc:
                steps.close()
                return plan.stopped(exc.status, str(exc))
        finally:
            prestart.close()  # a start still in progress is cut short, not waited for


async def run_async(tree: Tree, plan: RecursivePlan, context: Any, depth: int, span: RunSpan) -> Outcome:
    """:func:`run_sync` on the event loop; blocking sandbox calls run in this run's own thread.

    One thread per run (not the loop's shared default executor): a run waiting in ``execute``
    for a nested run holds its thread, and the nested run must still get one, however many
    runs are in flight. One thread also drives the sandbox, as it asks.
    """
    tree.budget.reach(depth)
    loop = asyncio.get_running_loop()
    thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rlm-sandbox")

    def in_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        # The context travels: the execute_tool span starts there, sub-calls are its children.
        return loop.run_in_executor(thread, functools.partial(contextvars.copy_context().run, fn, *args))

    sandbox, after = tree.new_sandbox()
    handler = AsyncQueries(tree, depth)
    held = tree.open.sandbox(sandbox)
    held.__enter__()
    # Queued on the run's one thread now, awaited where the REPL is first needed: the worker
    # starts and loads the context while the first model call is in flight.
    started = in_thread(start_with, sandbox, context, after)
    recorded = False
    try:
        steps = plan.steps()
        try:
            step = next(steps)
            while True:
                tree.budget.check()
                if isinstance(step, LLMRequest):
                    reply: Any = await tree.acomplete(step.messages, tree.model)
                else:
                    if not recorded:  # the strategy's first need of the REPL
                        tree.steps.sandbox_level(span, await started)
                        recorded = True
                    reply = await in_thread(_execute, tree, sandbox, step, handler, depth)
                step = steps.send(reply)
        except StopIteration as stop:
            outcome: Outcome = stop.value
            return outcome
        except BudgetExceeded as exc:
            steps.close()
            return plan.stopped(exc.status, str(exc))
    except asyncio.CancelledError:
        # The run is cancelled: stop its sub-calls and nested runs now, and end the running
        # code (close() from another thread kills the worker; execute() then returns).
        handler.cancel()
        sandbox.close()
        raise
    finally:
        try:
            if not started.done():
                # Cut a start in progress short (close() only signals the worker while the
                # start runs; that thread releases the rest), and let no error of it go unseen.
                sandbox.close()
                started.cancel()
            elif not started.cancelled():
                started.exception()  # retrieved: a start error was raised already, or superseded
            await in_thread(sandbox.close)
        finally:
            held.__exit__(None, None, None)
            thread.shutdown(wait=False)


def run_result(
    tree: Tree, plan: RecursivePlan, outcome: Outcome, span: RunSpan, before: tuple[Usage, float, bool]
) -> RLMResult:
    """The result of one run of the tree: usage and cost of its subtree (all of it for the root)."""
    budget = tree.budget
    usage, cost, priced = budget.since(before)
    last = plan.last
    return RLMResult(
        answer=outcome.answer,
        usage=usage,
        iterations=plan.iterations,
        cost=cost if priced else None,
        model=(last.model if last is not None else None) or tree.model,
        finish_reason=last.finish_reason if last is not None else None,
        trace_id=span.trace_id,
        status=outcome.status,
        subcalls=budget.subcalls,
        depth=budget.depth,
        by_model=budget.snapshot_by_model(),
        transcript=tuple(plan.messages),
    )


def root_sync(
    tree: Tree, plan: RecursivePlan, context: Any, span: RunSpan
) -> tuple[RLMResult, dict[str, Any]]:
    """A root run: its result and the run span's extra attributes (``RLM.run`` ends the span)."""
    tree.steps.started(span, context, 0, tree.config)
    before = tree.budget.totals()
    with tree.open.tracked(), tree.open.span(span):
        outcome = run_sync(tree, plan, context, 0, span)
    return _root_end(tree, plan, outcome, span, before)


async def root_async(
    tree: Tree, plan: RecursivePlan, context: Any, span: RunSpan
) -> tuple[RLMResult, dict[str, Any]]:
    tree.steps.started(span, context, 0, tree.config)
    before = tree.budget.totals()
    with tree.open.tracked(), tree.open.span(span):
        outcome = await run_async(tree, plan, context, 0, span)
    return _root_end(tree, plan, outcome, span, before)


def failed_run(
    tree: Tree,
    plan: RecursivePlan,
    span: RunSpan,
    error: BaseException,
    before: tuple[Usage, float, bool] | None = None,
) -> tuple[RLMResult, dict[str, Any]]:
    """A run that raised: what it spent (usage, cost, iterations, partial answer) as a failed
    result, and the same figures as attributes for the failed run span."""
    if before is None:
        before = (Usage(known=True), 0.0, False)
    result = dataclasses.replace(
        run_result(tree, plan, Outcome(plan.partial, STATUS_ERROR, str(error)), span, before), error=error
    )
    attrs: dict[str, Any] = {RLM_RUN_STATUS: STATUS_ERROR, RLM_RUN_ITERATIONS: result.iterations}
    if result.usage.known and result.usage.total_tokens:
        attrs[GA.GEN_AI_USAGE_INPUT_TOKENS] = result.usage.prompt_tokens
        attrs[GA.GEN_AI_USAGE_OUTPUT_TOKENS] = result.usage.completion_tokens
    if result.cost is not None:
        attrs[GEN_AI_USAGE_COST] = result.cost
    return result, attrs


def _root_end(
    tree: Tree, plan: RecursivePlan, outcome: Outcome, span: RunSpan, before: tuple[Usage, float, bool]
) -> tuple[RLMResult, dict[str, Any]]:
    result = run_result(tree, plan, outcome, span, before)
    tree.steps.record(tree.model, outcome.status, plan.iterations, tree.budget)
    return result, tree.steps.ended(outcome, tree.budget, root=True)
