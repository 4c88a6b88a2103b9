"""Write one self-contained HTML file that shows the runs in a set of spans (``rlm-view``).

The page has no server and makes no network request: its script and style are inlined from
package data (``_viewer/``), and the spans are embedded as JSON in a
``<script type="application/json">`` block, escaped so captured text cannot end that block or
open a comment (``<``, ``>``, ``&`` and U+2028/2029 become ``\\uXXXX`` escapes). The page
renders every captured string with ``textContent``, never as HTML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit import attributes as A
from rlm_toolkit.exporters._signals import span_json
from rlm_toolkit.exporters._view_read import compact, read_otlp_jsonl
from rlm_toolkit.genai import _semconv as S

#: Attribute names the page reads, from the conventions modules (both modes where they differ).
NAMES: dict[str, list[str]] = {
    "op": [GA.GEN_AI_OPERATION_NAME],
    "model": [GA.GEN_AI_RESPONSE_MODEL, GA.GEN_AI_REQUEST_MODEL],
    "input": [GA.GEN_AI_USAGE_INPUT_TOKENS],
    "output": [GA.GEN_AI_USAGE_OUTPUT_TOKENS],
    "cache_read": [GA.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS],
    "cache_write": sorted({S.DEFAULT.cache_write_attribute, S.LATEST.cache_write_attribute}),
    "cost": [A.GEN_AI_USAGE_COST],
    "attempts": [A.RLM_REQUEST_ATTEMPTS],
    "retry_event": [A.EVENT_RETRY],
    "agent": [GA.GEN_AI_AGENT_NAME],
    "status": [A.RLM_RUN_STATUS],
    "stream_end": [A.RLM_STREAM_END_REASON],
    "system": [GA.GEN_AI_SYSTEM_INSTRUCTIONS],
    "in_messages": [GA.GEN_AI_INPUT_MESSAGES],
    "out_messages": [GA.GEN_AI_OUTPUT_MESSAGES],
    "code": [GA.GEN_AI_TOOL_CALL_ARGUMENTS],
    "result": [GA.GEN_AI_TOOL_CALL_RESULT],
    "tool": [GA.GEN_AI_TOOL_NAME],
    "error_type": ["error.type"],
}
#: Operations whose tokens and cost are counted in totals (an agent span repeats its calls' sums).
CALL_OPERATIONS = ["chat", "text_completion", "generate_content", "embeddings", "create_embeddings"]

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(value: Any) -> str:
    """``value`` as JSON that is inert inside an HTML ``<script>`` element: no ``</script>``,
    ``<!--`` or line separator can appear in it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    for raw, escaped in _ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _asset(name: str) -> str:
    return (
        resources.files("rlm_toolkit.exporters")
        .joinpath("_viewer")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def render_html(data: Mapping[str, Any], title: str = "rlm-toolkit run") -> str:
    """The page for ``data`` (as made by the reader's ``compact``) as one HTML string."""
    payload = dict(data)
    payload["names"] = NAMES
    payload["calls"] = CALL_OPERATIONS
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        _asset("viewer.html")
        .replace("%TITLE%", safe_title)
        .replace("/*%CSS%*/", _asset("viewer.css"))
        .replace("%DATA%", embed_json(payload))
        .replace("/*%JS%*/", _asset("viewer.js"))
    )


def write_html(
    source: str | os.PathLike[str] | Iterable[ReadableSpan | Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> str:
    """Write the viewer page for ``source`` to ``path`` and return the absolute path written.

    ``source`` is an OTLP JSON lines file (its spans and span-linked log records are shown), or
    spans: SDK ``ReadableSpan`` objects or OTLP/JSON span dicts. Raises ``ValueError`` (one
    line) for a missing or malformed file; the output directory must exist.
    """
    if isinstance(source, (str, os.PathLike)):
        lines = read_otlp_jsonl(source)
        data = compact(lines.spans, lines.logs)
        title = title or os.path.basename(os.fspath(source))
    else:
        data = compact(span_json(s) if isinstance(s, ReadableSpan) else s for s in source)
    out = os.path.abspath(os.fspath(path))
    html = render_html(data, title or "rlm-toolkit run")
    with open(out, "w", encoding="utf-8") as file:
        file.write(html)
    return out
