"""Which version of the GenAI conventions we emit: one frozen :class:`Conventions` per mode.

Two modes, chosen once at instrument time (never per call):

* ``v1.41`` (default): the names of the core semantic-conventions repository up to v1.41, as
  the installed ``opentelemetry-semantic-conventions`` package spells them; schema URL
  ``https://opentelemetry.io/schemas/1.41.0`` (the names we emit, not the newest core schema
  the package knows: core deprecated these GenAI names after 1.41).
* ``latest`` (``OTEL_SEMCONV_STABILITY_OPT_IN`` contains ``gen_ai_latest_experimental``, the
  switch the official GenAI instrumentations read, or ``instrument(semconv="latest")``): the
  names of the GenAI conventions' own repository (``open-telemetry/semantic-conventions-genai``),
  which the installed package does not define yet, so they are spelled here, in one place.

Version followed by ``latest`` (:data:`GENAI_SOURCE`): the repository's files as read on
2026-12-05 through the project's code index (no dated clone was available, so commits are named
per file, dates are not):

* ``model/gen-ai/token-metrics.yaml`` @ ``066d4a7f356f`` -- counters
  ``gen_ai.client.inference.usage.{input,output,cache_read.input,cache_write.input,
  reasoning.output}_tokens`` with ``gen_ai.token.modality`` Required, recorded for failed
  calls too (``0`` with modality ``unknown`` when no usage arrived); per-call histograms
  ``gen_ai.client.inference.operation.{input,output}_tokens`` (not for failed calls:
  ``changelog.d/+token-histograms-failed.clarification.md`` @ ``fe1756a23766``). It replaced
  ``usage-metrics.yaml`` @ ``2f4c6b1ccd79`` (histograms ``usage.{input,output}_tokens`` beside
  ``usage.detailed.*`` counters).
* ``model/gen-ai/metrics.yaml`` and ``changelog.d/+embeddings.breaking.md`` @ ``88eccb155ca7``
  -- ``gen_ai.client.inference.duration`` for inference operations only,
  ``gen_ai.client.embeddings.duration`` and ``gen_ai.client.embeddings.operation.input_tokens``
  for embeddings, ``gen_ai.execute_tool.duration``,
  ``gen_ai.client.inference.time_to_first_chunk`` / ``time_per_output_chunk``. (That file at
  ``e9de14bafd97`` has no embeddings metric; which of the two is newer was not readable here, so
  embeddings keep the ``88eccb155ca7`` names.)
* ``model/gen-ai/metrics.yaml``, ``spans.yaml``, ``registry.yaml`` and ``changelog.d/571.breaking.md``
  / ``571.enhancement.md`` @ ``e9de14bafd97`` -- ``gen_ai.invocation.duration`` (it replaces
  ``gen_ai.invoke_agent.duration``): one point per agent invocation at any depth, with Required
  ``gen_ai.operation.name`` and ``gen_ai.invocation.is_nested`` (``false`` on the root run,
  ``true`` on a nested ``rlm_query`` run), ``gen_ai.agent.name`` (Conditionally Required),
  ``gen_ai.request.model`` (Recommended) and ``error.type`` on failure; no
  ``gen_ai.provider.name`` (not listed for it). Also ``gen_ai.invoke_agent.tool_calls`` (the
  tool executions a run triggered itself, ``gen_ai.agent.name``; a nested run's count as its
  own), and for a tool execution the executing agent's ``gen_ai.agent.name`` (Conditionally
  Required on the ``execute_tool`` span and ``gen_ai.execute_tool.duration``) with
  ``gen_ai.tool.type`` (Recommended) on that metric. Not emitted: ``gen_ai.invoke_agent.
  inference_calls`` (counting a run's own model calls needs a hook where inference
  invocations start). A failed run reports ``gen_ai.response.finish_reasons`` ``error``
  (registry note below; the invocation span lists finish reasons).
* ``model/gen-ai/events.yaml`` @ ``0387091683b4`` -- ``gen_ai.client.operation.exception``
  (WARN, ``exception.type`` or ``exception.message``; we send the type only, a message can
  carry content). No event is defined for a failed tool execution, so ours is
  ``rlm.execute_tool.exception``.
* ``model/gen-ai/registry.yaml`` @ ``e9de14bafd97`` (the commit of ``changelog.d/571``) --
  ``gen_ai.request.reasoning.level`` (the exact string sent), ``gen_ai.usage.cache_write.input_tokens``,
  and ``gen_ai.response.finish_reasons``: ``error`` for each position whose finish reason was
  expected but never received "because generation failed, was cancelled, or a stream ended
  before the final event": a stream that ended early (``genai/_stream.py``) and a failed
  non-streamed call (``genai/_invocation.py``, one ``error`` per choice requested).

Following the next rename is a change to :data:`DEFAULT` / :data:`LATEST` below (and the README
table "Names per convention mode", which ``tests/instrumentation/test_semconv_replay.py`` keeps
honest by replaying the recorded traffic against per-mode expectations).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from rlm_toolkit.attributes import EVENT_TOOL_EXCEPTION, RLM_REQUEST_REASONING_EFFORT
from rlm_toolkit.environment_variables import OTEL_SEMCONV_STABILITY_OPT_IN

_log = logging.getLogger(__name__)

MODE_DEFAULT: Final = "v1.41"
MODE_LATEST: Final = "latest"
#: The opt-in value of ``OTEL_SEMCONV_STABILITY_OPT_IN`` the official instrumentations use.
OPT_IN_LATEST: Final = "gen_ai_latest_experimental"
#: Schema URL of the GenAI conventions repository's first release (v1.42, June 2026).
GENAI_SCHEMA_URL: Final = "https://opentelemetry.io/schemas/gen-ai/1.42.0"
#: Schema URL of the core release whose GenAI names the default mode emits.
CORE_SCHEMA_URL_1_41: Final = "https://opentelemetry.io/schemas/1.41.0"
#: Where the latest mode's names were read (see the module docstring).
GENAI_SOURCE: Final = (
    "open-telemetry/semantic-conventions-genai: model/gen-ai/token-metrics.yaml@066d4a7f356f, "
    "model/gen-ai/metrics.yaml@88eccb155ca7 (embeddings), "
    "model/gen-ai/metrics.yaml@e9de14bafd97 (invocation), model/gen-ai/events.yaml@0387091683b4, "
    "model/gen-ai/registry.yaml@e9de14bafd97"
)
#: ``gen_ai.token.modality`` value when the provider gives no per-modality breakdown.
MODALITY_UNKNOWN: Final = "unknown"
#: Operations the latest conventions' embeddings metrics cover (not the inference ones).
EMBEDDINGS_OPERATIONS: Final = frozenset({GA.GenAiOperationNameValues.EMBEDDINGS.value})
#: Inference operations: the ones that report ``gen_ai.response.finish_reasons``.
INFERENCE_OPERATIONS: Final = frozenset(
    {
        GA.GenAiOperationNameValues.CHAT.value,
        GA.GenAiOperationNameValues.TEXT_COMPLETION.value,
        GA.GenAiOperationNameValues.GENERATE_CONTENT.value,
    }
)
#: ``gen_ai.response.finish_reasons`` value of a position whose finish reason never arrived.
FINISH_REASON_ERROR: Final = "error"


@dataclass(frozen=True)
class Conventions:
    """The names one mode emits. Passed (inside ``Telemetry``) to the instruments and the
    invocation; nothing reads the environment per call. A ``None`` name: not emitted."""

    mode: str
    schema_url: str
    duration: str
    time_to_first_chunk: str
    time_per_output_chunk: str
    #: v1.41: one histogram for both token types (``gen_ai.token.type``); None in latest mode.
    token_usage: str | None
    #: latest: one counter per token kind; None in v1.41 mode.
    usage_input: str | None
    usage_output: str | None
    usage_cache_read: str | None
    usage_cache_write: str | None
    usage_reasoning: str | None
    #: span attribute for prompt-cache write tokens
    cache_write_attribute: str
    #: latest: ``execute_tool`` duration histogram and exception event names (None: not emitted)
    tool_duration: str | None
    tool_exception_event: str | None
    #: Required attribute of the usage counters (``gen_ai.token.modality``); None: not sent.
    token_modality_attribute: str | None = None
    #: per-call token histograms (successful inference calls only)
    operation_input_tokens: str | None = None
    operation_output_tokens: str | None = None
    #: embeddings calls: duration and input-token histograms (None: the inference instruments)
    embeddings_duration: str | None = None
    embeddings_input_tokens: str | None = None
    #: failed inference calls without usage still record 0 on the usage counters
    zero_usage_on_failure: bool = False
    #: WARN log record of a failed call (``exception.type`` only, never the message)
    operation_exception_event: str | None = None
    #: request attribute for the Responses API's ``reasoning.effort``
    reasoning_level_attribute: str = RLM_REQUEST_REASONING_EFFORT
    #: duration histogram of an agent invocation (each ``invoke_agent`` run, nested ones too)
    invocation_duration: str | None = None
    #: its Required boolean: whether the run is nested in another in-process run
    invocation_nested_attribute: str | None = None
    #: ``error`` for each expected finish reason of a failed non-streamed call (and a failed run)
    finish_reasons_on_failure: bool = False
    #: histogram of the tool executions one run triggered itself (nested runs count their own)
    agent_tool_calls: str | None = None
    #: ``execute_tool`` spans carry the executing agent's ``gen_ai.agent.name``
    tool_agent_name: bool = False

    @property
    def latest(self) -> bool:
        return self.mode == MODE_LATEST


DEFAULT: Final = Conventions(
    mode=MODE_DEFAULT,
    schema_url=CORE_SCHEMA_URL_1_41,
    duration=gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
    time_to_first_chunk=gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    time_per_output_chunk=gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
    token_usage=gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
    usage_input=None,
    usage_output=None,
    usage_cache_read=None,
    usage_cache_write=None,
    usage_reasoning=None,
    cache_write_attribute=GA.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    tool_duration=None,
    tool_exception_event=None,
)

LATEST: Final = Conventions(
    mode=MODE_LATEST,
    schema_url=GENAI_SCHEMA_URL,
    duration="gen_ai.client.inference.duration",
    time_to_first_chunk="gen_ai.client.inference.time_to_first_chunk",
    time_per_output_chunk="gen_ai.client.inference.time_per_output_chunk",
    token_usage=None,
    usage_input="gen_ai.client.inference.usage.input_tokens",
    usage_output="gen_ai.client.inference.usage.output_tokens",
    usage_cache_read="gen_ai.client.inference.usage.cache_read.input_tokens",
    usage_cache_write="gen_ai.client.inference.usage.cache_write.input_tokens",
    usage_reasoning="gen_ai.client.inference.usage.reasoning.output_tokens",
    cache_write_attribute="gen_ai.usage.cache_write.input_tokens",
    tool_duration="gen_ai.execute_tool.duration",
    tool_exception_event=EVENT_TOOL_EXCEPTION,
    token_modality_attribute="gen_ai.token.modality",
    operation_input_tokens="gen_ai.client.inference.operation.input_tokens",
    operation_output_tokens="gen_ai.client.inference.operation.output_tokens",
    embeddings_duration="gen_ai.client.embeddings.duration",
    embeddings_input_tokens="gen_ai.client.embeddings.operation.input_tokens",
    zero_usage_on_failure=True,
    operation_exception_event="gen_ai.client.operation.exception",
    reasoning_level_attribute="gen_ai.request.reasoning.level",
    invocation_duration="gen_ai.invocation.duration",
    invocation_nested_attribute="gen_ai.invocation.is_nested",
    finish_reasons_on_failure=True,
    agent_tool_calls="gen_ai.invoke_agent.tool_calls",
    tool_agent_name=True,
)

_BY_NAME: Final = {MODE_DEFAULT: DEFAULT, "default": DEFAULT, MODE_LATEST: LATEST, OPT_IN_LATEST: LATEST}


def opted_in(value: str | None) -> bool:
    """Whether an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value asks for the latest GenAI names: a
    comma-separated list, entries trimmed and compared case-insensitively (other categories'
    entries such as ``http`` are ignored)."""
    if not value:
        return False
    return any(part.strip().lower() == OPT_IN_LATEST for part in value.split(","))


def resolve_conventions(value: str | Conventions | None = None) -> Conventions:
    """The conventions for ``value`` (``"v1.41"``/``"default"``, ``"latest"`` or
    ``"gen_ai_latest_experimental"``, or a :class:`Conventions`), or from
    ``OTEL_SEMCONV_STABILITY_OPT_IN`` when None. ``ValueError`` for anything else passed in code."""
    if isinstance(value, Conventions):
        return value
    if value is None:
        return LATEST if opted_in(os.environ.get(OTEL_SEMCONV_STABILITY_OPT_IN)) else DEFAULT
    if isinstance(value, str):
        found = _BY_NAME.get(value.strip().lower())
        if found is not None:
            return found
    raise ValueError(
        f"semconv={value!r}: expected 'v1.41' (default) or 'latest' "
        f"(same as OTEL_SEMCONV_STABILITY_OPT_IN={OPT_IN_LATEST})"
    )
