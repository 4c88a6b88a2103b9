"""Every environment variable rlm-toolkit reads, in one place.

Values are parsed leniently: an unrecognised value is logged and the default is used.
"""

from __future__ import annotations

from typing import Final

#: Content capture, as the OTel GenAI instrumentations spell it. Accepts ``true``/``false``
#: and ``span_only``/``event_only``/``span_and_event``/``no_content`` (case-insensitive).
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)
#: Max characters of captured content per message part before truncation (default 16384).
RLM_CAPTURE_MAX_LENGTH: Final = "RLM_CAPTURE_MAX_LENGTH"
#: Read by the offline demo path: when unset, examples start the bundled offline server.
OPENAI_API_KEY: Final = "OPENAI_API_KEY"
OPENAI_BASE_URL: Final = "OPENAI_BASE_URL"
#: Per-token delay (seconds) of the offline demo model, so streaming is visible to a human.
RLM_DEMO_TOKEN_DELAY: Final = "RLM_DEMO_TOKEN_DELAY"
#: Honeycomb API key, read by ``rlm-instrument --to honeycomb`` and collector-config.yaml.
HONEYCOMB_API_KEY: Final = "HONEYCOMB_API_KEY"

# -- rlm-instrument (set by the CLI for the process it starts; read by its bootstrap) --------
#: JSONL file that spans, metrics and log records are appended to (``--jsonl``).
RLM_INSTRUMENT_JSONL: Final = "RLM_INSTRUMENT_JSONL"
#: Comma-separated ``module:Class`` callbacks instantiated in the instrumented process.
RLM_INSTRUMENT_CALLBACKS: Final = "RLM_INSTRUMENT_CALLBACKS"
#: ``1``: grandchild Python processes are instrumented too (``--propagate``).
RLM_INSTRUMENT_PROPAGATE: Final = "RLM_INSTRUMENT_PROPAGATE"
#: Seconds the instrumented process may spend flushing telemetry at exit (default 5).
RLM_INSTRUMENT_SHUTDOWN_TIMEOUT: Final = "RLM_INSTRUMENT_SHUTDOWN_TIMEOUT"
#: Internal: JSON map of the variables the CLI changed -> original value (null = unset),
#: restored by the bootstrap so grandchildren see the user's environment.
RLM_INSTRUMENT_RESTORE: Final = "RLM_INSTRUMENT_RESTORE"
#: Dataset for metrics sent to Honeycomb by ``--to honeycomb`` (default: the service name).
HONEYCOMB_DATASET: Final = "HONEYCOMB_DATASET"
#: ``1``: re-raise rlm-toolkit's own internal errors instead of logging them at debug level.
#: For our test suite and for debugging; never set it in production.
RLM_TOOLKIT_STRICT: Final = "RLM_TOOLKIT_STRICT"

# -- telemetry shape (issue #11) -------------------------------------------------------------
#: Comma-separated opt-ins, as the official OTel instrumentations read it. The value
#: ``gen_ai_latest_experimental`` in the list switches our GenAI telemetry from the v1.41 names
#: (default) to the latest names of the GenAI conventions repository (see ``genai/_semconv.py``).
OTEL_SEMCONV_STABILITY_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
#: ``1``/``true``: add ``stream_options={"include_usage": true}`` to streamed chat requests that
#: lack it, and hide the extra usage-only chunk from the app (``--stream-usage``).
RLM_STREAM_USAGE: Final = "RLM_STREAM_USAGE"
#: ``1``/``true``: also export each streamed token as an ``rlm.llm.token`` Logs-API record (no
#: text, only its index). Off by default: token events then reach in-process callbacks
#: (``on_token``) without becoming records that exporters send to a backend.
RLM_EXPORT_TOKEN_EVENTS: Final = "RLM_EXPORT_TOKEN_EVENTS"
