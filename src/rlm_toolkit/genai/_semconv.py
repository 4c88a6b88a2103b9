"""Which version of the GenAI conventions we emit: one frozen :class:`Conventions` per mode.

Two modes, chosen once at instrument time (never per call):

* ``v1.41`` (default): the names of the core semantic-conventions repository up to v1.41, as
  the installed ``opentelemetry-semantic-conventions`` package spells them.
* ``latest`` (``OTEL_SEMCONV_STABILITY_OPT_IN`` contains ``gen_ai_latest_experimental``, the
  switch the official GenAI instrumentations read, or ``instrument(semconv="latest")``): the
  names of the GenAI conventions' own repository (``open-telemetry/semantic-conventions-genai``,
  schema ``https://opentelemetry.io/schemas/gen-ai/1.42.0``), which the installed package does not
  define yet, so they are spelled here, in one place.

What differs (everything else, span names and span attributes included, is the same):

=============================  ===============================================  ===================================================
what                           v1.41                                            latest
=============================  ===============================================  ===================================================
schema URL                     newest ``opentelemetry.semconv.schemas`` entry   ``https://opentelemetry.io/schemas/gen-ai/1.42.0``
call duration                  ``gen_ai.client.operation.duration``             ``gen_ai.client.inference.duration``
time to first chunk            ``gen_ai.client.operation.time_to_first_chunk``  ``gen_ai.client.inference.time_to_first_chunk``
time per output chunk          ``gen_ai.client.operation.time_per_output_chunk`` ``gen_ai.client.inference.time_per_output_chunk``
tokens                         histogram ``gen_ai.client.token.usage`` with     counters ``gen_ai.client.inference.usage.input_tokens``,
                               ``gen_ai.token.type`` = input / output           ``.output_tokens``, ``.cache_read.input_tokens``,
                                                                                ``.cache_write.input_tokens``, ``.reasoning.output_tokens``
cache-write tokens (span)      ``gen_ai.usage.cache_creation.input_tokens``     ``gen_ai.usage.cache_write.input_tokens``
``execute_tool`` steps         span only                                        + histogram ``gen_ai.execute_tool.duration`` and the
                                                                                ``gen_ai.execute_tool.exception`` event on failure
=============================  ===============================================  ===================================================

Usage is recorded on failed calls in both modes (when the response or stream reported it).
Where the names come from: the metric list of the GenAI repository's ``client-inference.md`` /
``gen-ai-token-metrics.md`` and ``execute-tool.md`` (v0.1.0 and main), and issue #11 for the schema
URL; the v1.41 names from ``opentelemetry.semconv._incubating``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.schemas import Schemas

from rlm_toolkit.environment_variables import OTEL_SEMCONV_STABILITY_OPT_IN

_log = logging.getLogger(__name__)

MODE_DEFAULT: Final = "v1.41"
MODE_LATEST: Final = "latest"
#: The opt-in value of ``OTEL_SEMCONV_STABILITY_OPT_IN`` the official instrumentations use.
OPT_IN_LATEST: Final = "gen_ai_latest_experimental"
#: Schema URL of the GenAI conventions repository's first release (v1.42, June 2026).
GENAI_SCHEMA_URL: Final = "https://opentelemetry.io/schemas/gen-ai/1.42.0"


@dataclass(frozen=True)
class Conventions:
    """The names one mode emits. Passed (inside ``Telemetry``) to the instruments and the
    invocation; nothing reads the environment per call."""

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

    @property
    def latest(self) -> bool:
        return self.mode == MODE_LATEST


def _newest_core_schema() -> str:
    newest = max(Schemas, key=lambda s: tuple(int(p) for p in s.value.rsplit("/", 1)[-1].split(".")))
    return str(newest.value)


DEFAULT: Final = Conventions(
    mode=MODE_DEFAULT,
    schema_url=_newest_core_schema(),
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
    tool_exception_event="gen_ai.execute_tool.exception",
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
