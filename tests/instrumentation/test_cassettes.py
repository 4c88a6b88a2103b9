"""Replay the opentelemetry-python-contrib openai-v2 cassettes (real recorded OpenAI traffic).

Each cassette's recorded request body is replayed through the real SDK method, and the span
must match what the recorded response says (ids, models, usage, finish reasons, errors).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

import rlm_toolkit

from .conftest import Otel
from .openai_cassettes import CASSETTES, interactions, replay

vcr = pytest.importorskip("vcr")

pytestmark = pytest.mark.skipif(not CASSETTES.is_dir(), reason="contrib cassettes not available")

NAMES = [
    "test_chat_completion_no_content",
    "test_async_chat_completion_no_content",
    "test_chat_completion_streaming",
    "test_async_chat_completion_streaming",
    "test_chat_completion_multiple_choices",
    "test_chat_completion_tool_calls_no_content",
    "test_chat_completion_404",
    "test_embeddings_with_batch_input",
    "test_embeddings_with_dimensions",
    "test_embeddings_with_encoding_format",
    "test_responses_create_basic[content_mode0]",
    "test_responses_create_api_error[content_mode0]",  # the provider blames a param (issue #20)
    "test_responses_create_streaming[content_mode0]",
    "test_responses_create_reports_reasoning_tokens[content_mode0]",
    "test_responses_create_aggregates_cache_tokens[content_mode0]",
]


def _load(name: str) -> dict[str, Any]:
    return interactions(name)[0]


def _sse(body: str) -> list[dict[str, Any]]:
    out = []
    for line in body.splitlines():
        if line.startswith("data: ") and not line.startswith("data: [DONE]"):
            out.append(json.loads(line[6:]))
    return out


def _details(usage: dict[str, Any], out: dict[str, Any], prefix: str) -> None:
    """Cached and reasoning token counts as reported, a reported 0 included (issue #11)."""
    cached = (usage.get(f"{prefix}_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        out["gen_ai.usage.cache_read.input_tokens"] = cached
    out_prefix = "completion" if prefix == "prompt" else "output"
    reasoning = (usage.get(f"{out_prefix}_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        out["gen_ai.usage.reasoning.output_tokens"] = reasoning


def _expected(path: str, request: dict[str, Any], status: int, body: str) -> dict[str, Any]:
    if status >= 400:
        error = json.loads(body).get("error") or {}
        return {
            "error.type": {400: "BadRequestError", 404: "NotFoundError"}.get(status),
            "http.response.status_code": status,
            "rlm.error.code": error.get("code"),  # the provider's code, beside the class
            "rlm.error.provider_type": error.get("type"),  # invalid_request_error (issue #20)
            "rlm.error.param": error.get("param"),
        }
    if request.get("stream"):
        events = _sse(body)
        if path.endswith("/responses"):
            final = next(e["response"] for e in events if e.get("type") == "response.completed")
            return _expected(path, {}, status, json.dumps(final))
        usage = next((e["usage"] for e in events if e.get("usage")), None)
        out = {
            "gen_ai.response.id": events[0]["id"],
            "gen_ai.response.model": events[0]["model"],
            "gen_ai.response.finish_reasons": tuple(
                c["finish_reason"] for e in events for c in e["choices"] if c.get("finish_reason")
            ),
            "rlm.stream.chunk_count": len(events),
            # kept on streams too (it was dropped before issue #11)
            "openai.response.system_fingerprint": events[0].get("system_fingerprint"),
        }
        if usage:
            out["gen_ai.usage.input_tokens"] = usage["prompt_tokens"]
            out["gen_ai.usage.output_tokens"] = usage["completion_tokens"]
            _details(usage, out, "prompt")
        return out
    data = json.loads(body)
    if path.endswith("/embeddings"):
        out = {
            "gen_ai.response.model": data["model"],
            "gen_ai.usage.input_tokens": data["usage"]["prompt_tokens"],
        }
        vector = data["data"][0]["embedding"]
        # base64 vectors (float32) are measured too (issue #11)
        dimensions = len(vector) if isinstance(vector, list) else len(base64.b64decode(vector)) // 4
        out["gen_ai.embeddings.dimension.count"] = dimensions
        out["rlm.embeddings.vector_count"] = len(data["data"])  # issue #20
        return out
    if path.endswith("/responses"):
        usage = data["usage"]
        out = {
            "gen_ai.response.id": data["id"],
            "gen_ai.response.model": data["model"],
            "gen_ai.usage.input_tokens": usage["input_tokens"],
            "gen_ai.usage.output_tokens": usage["output_tokens"],
        }
        _details(usage, out, "input")
        return out
    out = {
        "gen_ai.response.id": data["id"],
        "gen_ai.response.model": data["model"],
        "gen_ai.response.finish_reasons": tuple(c["finish_reason"] for c in data["choices"]),
        "gen_ai.usage.input_tokens": data["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": data["usage"]["completion_tokens"],
        "openai.response.system_fingerprint": data.get("system_fingerprint"),
    }
    _details(data["usage"], out, "prompt")
    return out


#: duration metric of each convention mode (the whole shapes are pinned in test_semconv.py)
DURATION = {"v1.41": "gen_ai.client.operation.duration", "latest": "gen_ai.client.inference.duration"}
EMBEDDINGS_DURATION = "gen_ai.client.embeddings.duration"


@pytest.fixture(params=sorted(DURATION))
def mode_instrumented(otel: Otel, request: pytest.FixtureRequest) -> Iterator[Otel]:
    rlm_toolkit.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        logger_provider=otel.logger_provider,
        semconv=request.param,
    )
    otel.mode = request.param  # type: ignore[attr-defined]
    yield otel
    rlm_toolkit.uninstrument()


@pytest.mark.parametrize("name", NAMES)
async def test_replay(name: str, mode_instrumented: Otel) -> None:
    plain_instrumented = mode_instrumented
    interaction = _load(name)
    request = json.loads(interaction["request"]["body"])
    path = interaction["request"]["uri"]
    status = interaction["response"]["status"]["code"]
    body = interaction["response"]["body"]["string"]
    await replay(name, "async" in name, first_only=True)
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.request.model"] == request["model"]
    assert attrs["server.address"] == "api.openai.com"
    assert attrs["server.port"] == 443
    expected = _expected(path, request, status, body)
    assert {k: attrs.get(k) for k in expected} == expected
    mode = mode_instrumented.mode  # type: ignore[attr-defined]
    # reasoning.effort: the conventions' request attribute in latest mode, ours in v1.41 mode
    effort = (request.get("reasoning") or {}).get("effort")
    level = {"latest": "gen_ai.request.reasoning.level", "v1.41": "rlm.request.reasoning.effort"}
    assert attrs.get(level[mode]) == effort
    assert level["v1.41" if mode == "latest" else "latest"] not in attrs
    metrics = mode_instrumented.metrics()
    # latest: embeddings are not an inference operation (their own duration metric)
    duration = EMBEDDINGS_DURATION if mode == "latest" and path.endswith("/embeddings") else DURATION[mode]
    assert duration in metrics
    assert DURATION["latest" if mode == "v1.41" else "v1.41"] not in metrics
