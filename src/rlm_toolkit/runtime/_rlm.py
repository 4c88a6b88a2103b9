"""``RLM``: run a prompt through an (instrumented) ``openai`` client, with scoped callbacks."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from rlm_toolkit._providers import anthropic_provider, instrumented_handler, provider_for
from rlm_toolkit.genai import Scope, TelemetryHandler, use_scope
from rlm_toolkit.runtime import _retry
from rlm_toolkit.runtime._answer_stream import AnswerStream
from rlm_toolkit.runtime._async_client import PerLoop, async_factory
from rlm_toolkit.runtime._budget import RLMConfig
from rlm_toolkit.runtime._calls import acomplete, complete
from rlm_toolkit.runtime._drive import adrive, build_result, drive, failed_result
from rlm_toolkit.runtime._loop import Tree, failed_run, root_async, root_sync
from rlm_toolkit.runtime._options import split_options
from rlm_toolkit.runtime._provider import ModelProvider
from rlm_toolkit.runtime._recursive import RecursiveStrategy
from rlm_toolkit.runtime._result import RLMResult
from rlm_toolkit.runtime._routing import Routing
from rlm_toolkit.runtime._run_span import RunSpan
from rlm_toolkit.runtime._steps import RunInstruments, Steps, run_instruments
from rlm_toolkit.runtime._strategy import Completion, LLMRequest, Strategy
from rlm_toolkit.runtime._stream import RLMStream
from rlm_toolkit.runtime._sub_calls import SubCalls, anthropic_options, sub_calls
from rlm_toolkit.sandbox import ReadySandboxes, SandboxLimits

#: What ``run(prompt, context=...)`` accepts as context.
Context = str | list[str] | dict[str, Any] | None


class RLM:
    """A model behind an ``openai`` client, with callbacks that see only this object's runs.

    ``RLM(client=openai.OpenAI(...), model="gpt-4o")`` uses your client as is (and, for
    :meth:`arun`, an async twin with the same settings, or ``async_client=``);
    :meth:`from_openai` builds one (lazily, on first use) from options, and ``RLM(model=...)``
    with no client is ``RLM.from_openai(model)``. ``tracer_provider`` /
    ``logger_provider`` send this RLM's spans and events to the given SDK providers instead
    of the global ones (or, with no OpenTelemetry setup at all, a private in-process pair
    that only feeds the callbacks). Providers and content capture are looked up at each run,
    so the order of ``RLM(...)``, ``trace.set_tracer_provider(...)`` and
    ``rlm_toolkit.instrument(...)`` does not matter.

    ``run(prompt, context=...)`` is a recursive run (see :meth:`run`) with the limits of
    ``config`` (:class:`RLMConfig`); ``sub_model`` picks the model of its sub-calls.
    """

    def __init__(
        self,
        client: Any = None,
        model: str | None = None,
        callbacks: Sequence[Any] | None = None,
        async_client: Any = None,
        *,
        tracer_provider: Any = None,
        logger_provider: Any = None,
        strategy: Strategy | None = None,
        config: RLMConfig | None = None,
        sub_model: str | None = None,
        meter_provider: Any = None,
        sub_client: Any = None,
        sub_async_client: Any = None,
    ) -> None:
        self.model: str = _check_arguments(
            client,
            model,
            async_client,
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
            meter_provider=meter_provider,
            strategy=strategy,
        )
        self._client = client
        self._async_client = async_client
        self._client_factory: Callable[[], Any] | None = None
        self._async_factory: Callable[[], Any] | None = None
        self._async_built: PerLoop | None = None
        self._lock = threading.Lock()
        self._strategy: Strategy = _default_strategy(strategy, config, sub_model)
        self._meter_provider = meter_provider
        self._instruments: RunInstruments | None = None
        # How this RLM's model calls are made and reported (through the handler each run
        # passes in; no process-wide instrumentation needed).
        self._provider: ModelProvider = provider_for(client if client is not None else async_client)
        #: Sub-calls on another client (``sub_client=``), maybe of another SDK; None: this one's.
        self._subs: SubCalls | None = sub_calls(
            sub_client, sub_async_client, getattr(getattr(self._strategy, "config", None), "sub_model", None)
        )
        if client is None and async_client is None:
            # RLM(model="gpt-4o"): the SDK's default clients (environment), as from_openai builds.
            self._set_factories({}, _retry.RetryPolicy())
        self._routing = Routing(callbacks, tracer_provider, logger_provider, instrumented_handler)
        self.callbacks: tuple[Any, ...] = self._routing.callbacks
        self._ready: ReadySandboxes | None = None  # keep_sandbox_ready()

    @classmethod
    def from_openai(
        cls,
        model: str,
        callbacks: Sequence[Any] | None = None,
        *,
        tracer_provider: Any = None,
        logger_provider: Any = None,
        strategy: Strategy | None = None,
        config: RLMConfig | None = None,
        sub_model: str | None = None,
        meter_provider: Any = None,
        sub_client: Any = None,
        sub_async_client: Any = None,
        **client_options: Any,
    ) -> RLM:
        """An RLM over ``openai.OpenAI`` (and ``openai.AsyncOpenAI`` for :meth:`arun`).

        ``client_options``: ``api_key``, ``base_url``, ``organization``, ``project``,
        ``timeout``, ``max_retries``, ``default_headers`` and ``retry`` (a
        :class:`RetryPolicy`). What you leave out comes from the SDK's environment variables
        (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ...), as for ``openai.OpenAI()``. The clients
        are created on first use: with no key at all (no ``api_key``, no ``OPENAI_API_KEY``) the
        first run raises :class:`RLMCredentialsError` before it starts anything.
        ``strategy``: how a run turns the prompt into LLM calls (default: one direct call
        without context, a recursive REPL run with context); ``config``: the recursive run's
        limits and budgets (:class:`RLMConfig`); ``sub_model``: the model for ``llm_query``
        sub-calls (shorthand for ``RLMConfig(sub_model=...)``); ``meter_provider``: where the
        recursive runs' metrics go (default: the global one); ``sub_client`` /
        ``sub_async_client``: the clients (of either SDK: ``anthropic.Anthropic(...)`` too) for
        the sub-calls' model, when it is served elsewhere than the root's.
        """
        kwargs, policy = split_options(client_options)
        rlm = cls(
            model=model,
            callbacks=callbacks,
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
            strategy=strategy,
            config=config,
            sub_model=sub_model,
            meter_provider=meter_provider,
            sub_client=sub_client,
            sub_async_client=sub_async_client,
        )
        rlm._set_factories(kwargs, policy)
        return rlm

    @classmethod
    def from_anthropic(
        cls,
        model: str,
        callbacks: Sequence[Any] | None = None,
        *,
        tracer_provider: Any = None,
        logger_provider: Any = None,
        strategy: Strategy | None = None,
        config: RLMConfig | None = None,
        sub_model: str | None = None,
        meter_provider: Any = None,
        sub_client: Any = None,
        sub_async_client: Any = None,
        **client_options: Any,
    ) -> RLM:
        """An RLM over Claude models: ``anthropic.Anthropic`` (``AsyncAnthropic`` for :meth:`arun`).

        The same runtime as :meth:`from_openai` (REPL, ``llm_query``/``rlm_query``, budgets,
        spans, callbacks), each model call one Messages API request reported as one span (the
        SDK's own tracing is off for these clients). ``client_options``: ``api_key``,
        ``auth_token``, ``base_url``, ``timeout``, ``max_retries``, ``default_headers``,
        ``retry`` (a :class:`RetryPolicy`) and ``max_tokens`` (of every call; default 4096).
        What you leave out comes from the SDK's environment (``ANTHROPIC_API_KEY``,
        ``ANTHROPIC_BASE_URL``). Needs the ``anthropic`` extra. ``sub_client`` /
        ``sub_async_client``: clients (e.g. ``openai.OpenAI(...)``) for ``sub_model`` when it is
        served elsewhere; one budget and one cost cover the whole tree.
        """
        kwargs, policy = anthropic_options(client_options)
        rlm = cls(
            model=model,
            callbacks=callbacks,
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
            strategy=strategy,
            config=config,
            sub_model=sub_model,
            meter_provider=meter_provider,
            sub_client=sub_client,
            sub_async_client=sub_async_client,
        )
        rlm._provider = anthropic_provider()  # the clients it builds are anthropic's
        rlm._set_factories(kwargs, policy)
        return rlm

    def _set_factories(self, kwargs: dict[str, Any], policy: _retry.RetryPolicy) -> None:
        """Clients built on first use by this RLM's provider (which raises
        :class:`RLMCredentialsError` in one line when no credentials reach the SDK)."""
        provider = self._provider
        self._client_factory = functools.partial(provider.sync_client, policy, kwargs)
        self._async_factory = functools.partial(provider.async_client, policy, kwargs)

    # -- clients ------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The sync ``openai`` client (built on first use by :meth:`from_openai`)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if self._client_factory is None:
                        raise TypeError(
                            "this RLM was built without a sync client; pass client=openai.OpenAI(...)"
                        )
                    self._client = self._client_factory()
        return self._client

    @property
    def async_client(self) -> Any:
        """The async client: given, built from the options, or derived from the sync client."""
        if self._async_client is not None:
            return self._async_client  # the user's own: used as is
        with self._lock:
            if self._async_built is None:
                factory = self._async_factory or async_factory(self._client)
                if factory is None:
                    raise TypeError("this RLM has no async client; pass async_client=openai.AsyncOpenAI(...)")
                self._async_built = PerLoop(factory)
        return self._async_built.get()  # one per event loop: a client outlives no asyncio.run()

    # -- runs -----------------------------------------------------------------------------------
    def run(self, prompt: str, context: Context = None, *, raise_on_error: bool = True) -> RLMResult:
        """Answer ``prompt`` (with ``context``, if given) and return an :class:`RLMResult`.

        Without context this is exactly one chat call. With context (a str of any size, a list
        of str or a dict) it is a recursive run: the context lives in a sandboxed REPL the model
        programs, with ``llm_query`` sub-calls, until ``FINAL`` or a limit of the
        :class:`RLMConfig` (``RLMResult.status`` says which). A failure (after the client's
        retries) reaches the callbacks' ``on_error`` and is then re-raised unchanged; with
        ``raise_on_error=False`` it is returned as ``RLMResult.error`` instead.
        """
        _check_prompt(prompt, context)
        handler, scope = self._routing.resolve()
        create = self._provider.create(handler, self.client)
        stream = handler.wants(scope).tokens

        def call(request: LLMRequest) -> Any:
            return complete(create, self.model, request.messages, stream)

        recursive = self._recursive(context)
        # Before the run starts: a missing sub-call client is a one-line error, not a failed run.
        sub = self._subs.create(handler) if self._subs is not None and recursive is not None else None
        with self._running(handler, scope, prompt, context, raise_on_error) as run:
            if recursive is None:
                run.answered(*drive(self._strategy.plan(prompt, context), call))
            else:
                tree = Tree(
                    recursive.config,
                    self.model,
                    run.steps,
                    ready=self._ready,
                    call=lambda messages, model, timeout: complete(
                        self._pick(create, sub, model), model, messages, stream, timeout
                    ),
                )
                plan = recursive.recursive_plan(prompt, context)
                run.spent = functools.partial(failed_run, tree, plan, run.span)
                run.ended(*root_sync(tree, plan, context, run.span))
        return run.result

    async def arun(self, prompt: str, context: Context = None, *, raise_on_error: bool = True) -> RLMResult:
        """:meth:`run` with the async client (sandbox work runs in a worker thread; sub-calls
        use the async client on this event loop)."""
        _check_prompt(prompt, context)
        handler, scope = self._routing.resolve()
        create = self._provider.acreate(handler, self.async_client)
        stream = handler.wants(scope).tokens

        async def call(request: LLMRequest) -> Any:
            return await acomplete(create, self.model, request.messages, stream)

        recursive = self._recursive(context)
        asub = self._subs.acreate(handler) if self._subs is not None and recursive is not None else None
        with self._running(handler, scope, prompt, context, raise_on_error) as run:
            if recursive is None:
                run.answered(*await adrive(self._strategy.plan(prompt, context), call))
            else:
                tree = Tree(
                    recursive.config,
                    self.model,
                    run.steps,
                    ready=self._ready,
                    acall=lambda messages, model, timeout: acomplete(
                        self._pick(create, asub, model), model, messages, stream, timeout
                    ),
                    loop=asyncio.get_running_loop(),
                )
                plan = recursive.recursive_plan(prompt, context)
                run.spent = functools.partial(failed_run, tree, plan, run.span)
                run.ended(*await root_async(tree, plan, context, run.span))
        return run.result

    def keep_sandbox_ready(self) -> ReadySandboxes:
        """Keep one fresh sandbox worker started for this RLM's recursive runs, so a run never
        waits for one (for an RLM that serves many runs: an eval worker, a service).

        Each run takes the worker kept ready -- started in the background, it has run nothing --
        and closes it at its end (a worker that ran someone's code is never reused); the next one
        starts as it is taken. Returns the :class:`~rlm_toolkit.sandbox.ReadySandboxes`: its
        ``close()`` (or a ``with`` block) ends the worker kept ready and the keeping, as do the
        process's exit and garbage collection. Calling this again while kept returns the same one.
        """
        with self._lock:
            ready = self._ready
            if ready is None or ready.closed:
                strategy = self._strategy
                config = strategy.config if isinstance(strategy, RecursiveStrategy) else None
                ready = self._ready = ReadySandboxes((config and config.sandbox_limits) or SandboxLimits())
            return ready

    def _pick(self, root: Any, sub: Any, model: str) -> Any:
        """The model call for ``model``: the sub-call client's for any model but the root's."""
        return sub if sub is not None and model != self.model else root

    def _recursive(self, context: Context) -> RecursiveStrategy | None:
        """The recursive strategy when this run is a recursive one (a context and that strategy)."""
        strategy = self._strategy
        return strategy if context is not None and isinstance(strategy, RecursiveStrategy) else None

    def _steps(self, handler: TelemetryHandler, scope: Scope | None) -> Steps:
        """The recursive loop's telemetry, through the same pipeline owner as the run span:
        ``handler`` (tracer, content policy, consumers) and the run's ``scope`` (callbacks)."""
        if self._instruments is None:
            meter_provider = self._meter_provider
            self._instruments = run_instruments(
                meter_provider if meter_provider is not None else handler.meter_provider
            )

        def run_span(prompt: str, context: Any) -> RunSpan:
            return RunSpan(handler, scope, self.model, prompt, context)

        return Steps(handler, scope, self._instruments, run_span)

    @contextmanager
    def _running(
        self,
        handler: TelemetryHandler,
        scope: Scope | None,
        prompt: str,
        context: Context,
        raise_on_error: bool,
    ) -> Iterator[_Run]:
        """One run, sync or async alike, reported through ``handler``: the scope, the run span
        (current while the body runs), and its end -- finished with the built result, or failed
        and then re-raised (or kept as a failed result when ``raise_on_error`` is False)."""
        with _scoped(scope):
            span = RunSpan(handler, scope, self.model, prompt, context)
            run = _Run(span, self._steps(handler, scope) if self._recursive(context) is not None else None)
            try:
                with span.current():
                    yield run
            except BaseException as exc:
                # A recursive run reports what it spent before failing (cost, tokens, partial answer).
                spent = run.spent(exc) if run.spent is not None else None
                span.fail(exc, spent[1] if spent is not None else None)
                if raise_on_error or not isinstance(exc, Exception):
                    raise
                run.result = spent[0] if spent is not None else failed_result(self.model, exc, span.trace_id)
                return
            if run.extra is None:
                run.result = build_result(self.model, run.answer, run.completions, span.trace_id)
            span.finish(run.result, run.extra)

    def stream(self, prompt: str, context: Context = None) -> RLMStream | AnswerStream:
        """Iterate the answer's text tokens as they arrive; ``.result`` holds the RLMResult after.

        One streamed chat call, made on the first ``next()``. The run ends exactly once: at the
        end of the iteration, on ``close()``/leaving a ``with`` block (with the text so far), on
        an error (re-raised unchanged after ``on_error``), or -- as ``abandoned`` -- when the
        stream is garbage-collected unfinished. A ``with`` block ends it deterministically.
        With context (a recursive run) the run happens on the first ``next()`` and its final
        answer is the one item (the root model's replies are code, not answer text).
        """
        _check_prompt(prompt, context)
        if self._recursive(context) is not None:
            return AnswerStream(lambda: self.run(prompt, context))
        handler, scope = self._routing.resolve()
        return RLMStream(
            client=self._provider.create(handler, self.client),
            model=self.model,
            prompt=prompt,
            context=context,
            messages=self._strategy.messages(prompt, context),
            scoped=lambda: _scoped(scope),
            handler=handler,
            scope=scope,
        )

    def __repr__(self) -> str:
        return f"RLM(model={self.model!r}, callbacks={len(self.callbacks)})"


class _Run:
    """What the body of :meth:`RLM._running` produced, and the result built from it."""

    __slots__ = ("_steps", "answer", "completions", "extra", "result", "span", "spent")

    def __init__(self, span: RunSpan, steps: Steps | None) -> None:
        self.span = span
        self._steps = steps
        self.answer = ""
        self.completions: list[Completion] = []
        self.result: RLMResult
        #: Set by a recursive run: the run span's extra attributes (and ``result`` is final).
        self.extra: dict[str, Any] | None = None
        #: Set by a recursive run: its result and span attributes if it fails (what it spent).
        self.spent: Callable[[BaseException], tuple[RLMResult, dict[str, Any]]] | None = None

    @property
    def steps(self) -> Steps:
        assert self._steps is not None
        return self._steps

    def answered(self, answer: str, completions: list[Completion]) -> None:
        self.answer = answer
        self.completions = completions

    def ended(self, result: RLMResult, extra: dict[str, Any]) -> None:
        self.result = result
        self.extra = extra


def _scoped(scope: Scope | None) -> AbstractContextManager[Any]:
    # No scope of our own: leave an enclosing one (e.g. an outer run) in place.
    return use_scope(scope) if scope is not None else nullcontext()


def _check_arguments(client: Any, model: Any, async_client: Any, **named: Any) -> str:
    """The model name, or a one-line ``TypeError`` for the usual constructor mix-ups."""
    if isinstance(client, str):
        raise TypeError(
            "RLM(client, model=...) takes an openai client first; for a model name use "
            f"RLM.from_openai({client!r}) or RLM(model={client!r})"
        )
    for name, value in (("client", client), ("async_client", async_client), *named.items()):
        if isinstance(value, type):
            raise TypeError(f"RLM() {name} must be an instance, got the class {value.__qualname__}")
    if isinstance(model, (list, tuple)):
        raise TypeError(
            "RLM(client, model, callbacks): the second argument is the model name; pass callbacks=[...]"
        )
    if not isinstance(model, str) or not model:
        raise TypeError(f"RLM() needs model=<model name>, got {model!r}")
    strategy = named.get("strategy")
    if strategy is not None and not (
        callable(getattr(strategy, "plan", None)) and callable(getattr(strategy, "messages", None))
    ):
        raise TypeError(
            f"RLM() strategy must have plan() and messages() methods, got {type(strategy).__qualname__}"
        )
    return model


def _default_strategy(strategy: Strategy | None, config: RLMConfig | None, sub_model: str | None) -> Strategy:
    if config is not None and not isinstance(config, RLMConfig):
        raise TypeError(f"RLM() config must be an RLMConfig, got {type(config).__qualname__}")
    if sub_model is not None and (not isinstance(sub_model, str) or not sub_model):
        raise TypeError(f"RLM() sub_model must be a model name, got {sub_model!r}")
    if strategy is not None:
        if config is not None or sub_model is not None:
            raise TypeError("RLM() takes config=/sub_model= or strategy=, not both; put them in the strategy")
        return strategy
    config = config if config is not None else RLMConfig()
    if sub_model is not None:
        config = dataclasses.replace(config, sub_model=sub_model)
    return RecursiveStrategy(config)


def _check_prompt(prompt: Any, context: Any) -> None:
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if context is None or isinstance(context, (str, dict)):
        return
    if isinstance(context, list) and all(isinstance(item, str) for item in context):
        return
    raise TypeError(f"context must be a str, a list of str, a dict or None, got {type(context).__name__}")
