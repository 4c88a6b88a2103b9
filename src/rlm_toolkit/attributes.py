"""Attribute keys, event names and metric names of our own.

Standard ``gen_ai.*`` keys come from ``opentelemetry.semconv._incubating``; only the keys the
conventions do not (yet) define live here, so a rename is a one-line change. Keys that are
semconv-shaped but not in the installed conventions package are marked ``(extension)``.
"""

from __future__ import annotations

from typing import Final

# -- span attributes -------------------------------------------------------------------------
#: How many HTTP attempts the SDK made for one logical call (1 = no retry).
RLM_REQUEST_ATTEMPTS: Final = "rlm.request.attempts"
#: How a stream ended: one of the ``STREAM_END_*`` values below.
RLM_STREAM_END_REASON: Final = "rlm.stream.end_reason"
#: Number of chunks/events a stream delivered before it ended.
RLM_STREAM_CHUNK_COUNT: Final = "rlm.stream.chunk_count"
#: Estimated cost of the call in USD, from the bundled (dated) price table. (extension)
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
#: Which SDK surface made the call, e.g. ``chat.completions.create`` or ``responses.stream``.
RLM_OPENAI_API: Final = "rlm.openai.api"

STREAM_END_COMPLETED: Final = "completed"  # iterated to exhaustion
STREAM_END_CLOSED: Final = "closed"  # close()/aclose()/__exit__ or break inside ``with`` before the end
STREAM_END_ABANDONED: Final = "abandoned"  # garbage-collected before it was finished or closed
STREAM_END_ERROR: Final = "error"  # an exception was raised while iterating

# -- RLM runtime spans (run, REPL steps, sub-calls) -----------------------------------------
RLM_AGENT_NAME: Final = "rlm"
RLM_RUN_ITERATIONS: Final = "rlm.run.iterations"
RLM_RUN_CONTEXT_CHARS: Final = "rlm.run.context_chars"
#: Nesting level of a run (0: the root; an ``rlm_query`` run is one deeper than its caller).
RLM_RUN_DEPTH: Final = "rlm.run.depth"

# -- events (span events and Logs-API event records share names and attribute keys) ---------
#: The SDK is about to sleep and retry an HTTP attempt of the current call.
EVENT_RETRY: Final = "rlm.retry"
RLM_RETRY_ATTEMPT: Final = "rlm.retry.attempt"  # 1-based number of the retry about to happen
#: How many retries the SDK allows for the call (its ``max_retries``; attempts = retries + 1).
RLM_RETRY_MAX_RETRIES: Final = "rlm.retry.max_retries"
#: Before issue #11 the same value was emitted as ``rlm.retry.max_attempts``, which it is not
#: (it counts retries). Readers accept this old key for telemetry recorded by older versions.
RLM_RETRY_MAX_ATTEMPTS_OLD: Final = "rlm.retry.max_attempts"
RLM_RETRY_DELAY: Final = "rlm.retry.delay_s"  # seconds the SDK will sleep
RLM_RETRY_AFTER: Final = "rlm.retry.retry_after_s"  # server's Retry-After, when given
#: One streamed text token/delta reached the application (emitted only when a consumer asks).
EVENT_TOKEN: Final = "rlm.llm.token"
RLM_TOKEN_INDEX: Final = "rlm.token.index"
#: The conventions' content event (Logs API), emitted when content capture includes events.
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"

# -- metrics of our own ----------------------------------------------------------------------
METRIC_RETRIES: Final = "rlm.client.retries"
METRIC_COST: Final = "rlm.client.cost"

# -- issue #11: convention modes, provider identity, what real traffic showed ----------------
#: The provider's own error code (``model_not_found``, ``rate_limit_exceeded``...), beside
#: ``error.type`` on a failed call, when the API error body carries one. (extension)
RLM_ERROR_CODE: Final = "rlm.error.code"
#: Provider name for an OpenAI-compatible endpoint the conventions do not list (documented
#: rule in ``instrumentation/openai/_provider.py``).
PROVIDER_OPENROUTER: Final = "openrouter"
# -- recursive runtime (issue #10): REPL steps, sub-calls, budgets, sandbox ------------------
#: Name of the REPL tool on ``execute_tool`` spans (``gen_ai.tool.name``).
RLM_REPL_TOOL_NAME: Final = "repl"
#: How a recursive run ended: ``final``, ``max_iterations``, ``budget``, ``timeout``, ``error``.
RLM_RUN_STATUS: Final = "rlm.run.status"
#: Why a run stopped early (the limit that was hit), when it did not finish normally.
RLM_RUN_STOP_REASON: Final = "rlm.run.stop_reason"
#: ``llm_query``/``rlm_query`` sub-calls: of the whole tree on a run span, of one execution on a tool span.
RLM_RUN_SUBCALLS: Final = "rlm.run.subcalls"
#: Deepest nesting level reached by the run tree (0 = no nested ``rlm_query`` run).
RLM_RUN_MAX_DEPTH: Final = "rlm.run.max_depth"
#: Budget limits the run was given (absent: no limit).
RLM_BUDGET_MAX_TOKENS: Final = "rlm.budget.max_tokens"
RLM_BUDGET_MAX_COST: Final = "rlm.budget.max_cost_usd"
RLM_BUDGET_MAX_ITERATIONS: Final = "rlm.budget.max_iterations"
#: Isolation reached by the sandbox, e.g. ``landlock+seccomp+rlimits``.
RLM_SANDBOX_LEVEL: Final = "rlm.sandbox.level"
#: The root-model turn (1-based) whose code an ``execute_tool`` span ran.
RLM_REPL_ITERATION: Final = "rlm.repl.iteration"
#: The limit that killed an execution: ``cpu``, ``wall``, ``memory``, ``output``, ``crash``.
RLM_REPL_KILLED: Final = "rlm.repl.killed"
#: Characters of output the execution printed (as kept by the sandbox).
RLM_REPL_OUTPUT_CHARS: Final = "rlm.repl.output_chars"
#: True when the execution produced the run's final answer.
RLM_REPL_FINAL: Final = "rlm.repl.final"
METRIC_RUN_ITERATIONS: Final = "rlm.run.iterations"
METRIC_RUN_SUBCALLS: Final = "rlm.run.subcalls"
METRIC_RUN_COST: Final = "rlm.run.cost"

# -- Anthropic: request parameters the conventions do not name ------------------------------
#: ``thinking.budget_tokens`` of an extended-thinking request (``thinking={"type": "enabled"}``).
RLM_ANTHROPIC_THINKING_BUDGET: Final = "rlm.anthropic.thinking.budget_tokens"
#: ``thinking.type`` of the request: ``enabled``, ``adaptive`` or ``disabled``.
RLM_ANTHROPIC_THINKING_TYPE: Final = "rlm.anthropic.thinking.type"
#: ``gen_ai.operation.name`` of ``messages.count_tokens`` (a custom value: the conventions name
#: none). Its span carries the count as :data:`RLM_COUNT_TOKENS_INPUT_TOKENS`, never as
#: ``gen_ai.usage.*``: counting tokens is not usage, so it adds nothing to token metrics or cost.
OPERATION_COUNT_TOKENS: Final = "count_tokens"
RLM_COUNT_TOKENS_INPUT_TOKENS: Final = "rlm.count_tokens.input_tokens"
#: ``gen_ai.operation.name`` prefix of the Message Batches calls (``batches.create``, ...).
OPERATION_BATCHES: Final = "batches"
RLM_BATCH_ID: Final = "rlm.batch.id"  # the batch a call created or acted on
RLM_BATCH_STATUS: Final = "rlm.batch.processing_status"  # in_progress, canceling, ended
RLM_BATCH_REQUESTS: Final = "rlm.batch.requests"  # requests a ``create`` submitted
RLM_BATCH_COUNT: Final = "rlm.batch.count"  # batches a ``list`` page returned
#: The SDK surface of a call (``messages.count_tokens``, ``beta.messages.batches.create``...).
RLM_ANTHROPIC_API: Final = "rlm.anthropic.api"
#: A failed ``execute_tool`` step's WARN record (latest mode; the GenAI conventions define none).
EVENT_TOOL_EXCEPTION: Final = "rlm.execute_tool.exception"
#: The Responses API's ``reasoning.effort`` in v1.41 mode (latest: ``gen_ai.request.reasoning.level``).
RLM_REQUEST_REASONING_EFFORT: Final = "rlm.request.reasoning.effort"
#: The provider's error ``type`` (``invalid_request_error``...) and ``param``, beside ``rlm.error.code``.
RLM_ERROR_PROVIDER_TYPE: Final = "rlm.error.provider_type"
RLM_ERROR_PARAM: Final = "rlm.error.param"
#: Number of vectors an embeddings call returned.
RLM_EMBEDDINGS_VECTOR_COUNT: Final = "rlm.embeddings.vector_count"

# Evals (rlm-eval): the eval run's span, and the GenAI conventions' evaluation event name
# (not yet a constant in opentelemetry.semconv).
EVENT_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
RLM_EVAL_SPAN_NAME: Final = "rlm.eval"
RLM_EVAL_NAME: Final = "rlm.eval.name"
RLM_EVAL_TASKS: Final = "rlm.eval.tasks"
RLM_EVAL_TASK_ID: Final = "rlm.eval.task.id"
RLM_EVAL_FINISHED: Final = "rlm.eval.finished"
RLM_EVAL_ACCURACY: Final = "rlm.eval.accuracy"
