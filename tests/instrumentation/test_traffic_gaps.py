"""Fields real OpenAI traffic showed we dropped (issue #11), over real HTTP to the offline server."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Say hi"}]


def test_streamed_chat_keeps_system_fingerprint(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("hi there")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    fingerprint = chunks[0].system_fingerprint
    assert fingerprint  # the server sends one, as OpenAI does
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["openai.response.system_fingerprint"] == fingerprint


@pytest.mark.parametrize("dimensions", [None, 8])
def test_base64_embedding_dimension(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, dimensions: int | None
) -> None:
    extra = {} if dimensions is None else {"dimensions": dimensions}
    response = client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="base64", **extra
    )
    vector = response.data[0].embedding
    assert isinstance(vector, str)  # the SDK hands base64 back as is
    decoded = base64.b64decode(vector)
    length = len(struct.unpack(f"<{len(decoded) // 4}f", decoded))
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["gen_ai.embeddings.dimension.count"] == length
    if dimensions is not None:
        assert length == dimensions


def test_reported_zero_tokens_are_kept(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_reply("hi")
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.usage is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert response.usage.completion_tokens_details.reasoning_tokens == 0  # type: ignore[union-attr]
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 0


def test_provider_error_code_beside_error_type(plain_instrumented: Otel, server: OpenAIServer) -> None:
    server.queue_fault("rate_limit")
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.close()
    assert caught.value.code == "rate_limit_exceeded"
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["error.type"] == "RateLimitError"
    assert attrs["rlm.error.code"] == "rate_limit_exceeded"
    assert attrs["http.response.status_code"] == 429


def test_retry_event_names_what_it_counts(plain_instrumented: Otel, server: OpenAIServer) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=3)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.close()
    span = plain_instrumented.span()
    (event,) = [e for e in span.events if e.name == "rlm.retry"]
    assert event.attributes is not None
    assert event.attributes["rlm.retry.max_retries"] == 3  # the SDK's max_retries
    assert "rlm.retry.max_attempts" not in event.attributes
    assert dict(span.attributes or {})["rlm.request.attempts"] == 2  # attempts = retries done + 1


@pytest.mark.parametrize("key", ["rlm.retry.max_retries", "rlm.retry.max_attempts"])
def test_readers_accept_the_new_and_the_old_retry_key(key: str) -> None:
    """Recordings made before the rename (JSONL files, other processes) still read right."""
    from opentelemetry.sdk.trace import Event

    from rlm_toolkit.callbacks._extract import retry_fields
    from rlm_toolkit.exporters._render import _event_label

    attrs = {"rlm.retry.attempt": 1, key: 2, "rlm.retry.delay_s": 0.5}
    assert retry_fields(attrs, None)["max_attempts"] == 2
    label = _event_label(Event("rlm.retry", attrs))
    assert label is not None and "retry 1/2" in label.plain
