"""Every injectable fault, as the real ``openai`` client experiences it."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse

import openai
import pytest

from rlm_toolkit.testing import FAULT_KINDS, OpenAIServer

MESSAGES = [{"role": "user", "content": "hello"}]


def retrying_client(server: OpenAIServer, retries: int, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=retries, **kwargs)  # type: ignore[arg-type]


def test_rate_limit_is_retried_honouring_retry_after(server: OpenAIServer) -> None:
    server.queue_fault("rate_limit", retry_after=0.01, times=2)
    with retrying_client(server, 2) as client:
        started = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        elapsed = time.monotonic() - started
    assert raw.parse().choices[0].message.content is not None
    assert [r.fault for r in server.requests] == ["rate_limit", "rate_limit", None]
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]
    # Without Retry-After the SDK would back off 0.5 s then 1 s (minus <= 25% jitter): >= 1.125 s.
    assert elapsed < 1.0


def test_rate_limit_wire_format(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("rate_limit", retry_after=1.5)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = info.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1.5"
    assert error.response.headers["retry-after-ms"] == "1500"
    assert error.response.headers["x-request-id"].startswith("req_")
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.body == {
        "message": "Rate limit reached (injected fault). Please try again later.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


@pytest.mark.parametrize(
    ("kind", "exc", "status"),
    [("server_error", openai.InternalServerError, 500), ("unavailable", openai.InternalServerError, 503)],
)
def test_server_errors_are_retried_then_raised(
    server: OpenAIServer, kind: str, exc: type[openai.APIStatusError], status: int
) -> None:
    server.queue_fault(kind, retry_after=0.01, times=3)
    with retrying_client(server, 2) as client, pytest.raises(exc) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.status_code == status
    assert info.value.type == "server_error"
    assert len(server.requests) == 3
    assert server.pending == (0, 0)


@pytest.mark.parametrize(
    ("kind", "exc", "status", "code"),
    [
        ("bad_request", openai.BadRequestError, 400, None),
        ("unauthorized", openai.AuthenticationError, 401, "invalid_api_key"),
        ("not_found", openai.NotFoundError, 404, "model_not_found"),
    ],
)
def test_client_errors_are_typed_and_not_retried(
    server: OpenAIServer, kind: str, exc: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    server.queue_fault(kind)
    with retrying_client(server, 3) as client, pytest.raises(exc) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.status_code == status
    assert info.value.code == code
    assert info.value.type == "invalid_request_error"
    assert set(info.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert len(server.requests) == 1


def test_status_override(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("server_error", status=502)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.status_code == 502


def test_slow_times_out_then_retry_succeeds(server: OpenAIServer) -> None:
    server.queue_fault("slow", delay=2.0)
    with retrying_client(server, 0, timeout=0.2) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    server.queue_fault("slow", delay=0.05)
    with retrying_client(server, 0, timeout=5) as client:
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_reset_is_a_connection_error(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("reset")
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert not isinstance(info.value, openai.APITimeoutError)
    # The server is fine afterwards, and the client reconnects.
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_reset_is_retried(server: OpenAIServer) -> None:
    server.queue_fault("reset")
    with retrying_client(server, 1) as client:
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    assert [r.fault for r in server.requests] == ["reset", None]


def test_cut_stream_raises_from_iteration(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("cut_stream", after_chunks=3)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    assert all(c.choices[0].finish_reason is None for c in received)


def test_malformed_sse_raises_from_iteration(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("malformed_sse")
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(json.JSONDecodeError):
        for chunk in stream:
            received.append(chunk)
    assert [c.choices[0].delta.role for c in received] == ["assistant"]


def test_no_usage_drops_the_usage_chunk(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("no_usage")
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_stream_faults_wait_for_a_streaming_request(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("cut_stream", after_chunks=0)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    assert server.pending == (0, 1)
    with pytest.raises(openai.APIConnectionError):
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert server.pending == (0, 0)


def test_path_filter_and_fifo(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("not_found", path="/embeddings")
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert [(r.path, r.fault) for r in server.requests] == [
        ("/v1/chat/completions", "bad_request"),
        ("/v1/chat/completions", None),
        ("/v1/embeddings", "not_found"),
    ]


async def test_async_client_sees_the_same_faults(server: OpenAIServer) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    server.queue_fault("cut_stream", after_chunks=1)
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=1) as client:
        result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert result.choices[0].message.content
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass
    assert [r.fault for r in server.requests] == ["rate_limit", None, "cut_stream"]


def test_request_log_redacts_secrets(server: OpenAIServer) -> None:
    with openai.OpenAI(
        base_url=server.base_url,
        api_key="sk-very-secret",
        max_retries=0,
        default_headers={"api-key": "azure-secret", "Cookie": "session=abc", "X-Custom": "kept"},
    ) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (request,) = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/chat/completions", "")
    assert request.body == {"model": "gpt-4o", "messages": MESSAGES}
    assert request.headers["authorization"] == "<redacted>"
    assert request.headers["api-key"] == "<redacted>"
    assert request.headers["cookie"] == "<redacted>"
    assert request.headers["x-custom"] == "kept"
    assert all(k == k.lower() for k in request.headers)
    assert "secret" not in repr(server.requests)
    server.reset()
    assert server.requests == []


def test_query_string_secrets_are_redacted_in_the_log_and_the_record(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rlm_toolkit.testing")
    query = {
        "api-key": "QUERYSECRET99",
        "API_KEY": "QUERYSECRET98",
        "Key": "QUERYSECRET97",
        "token": "QUERYSECRET96",
        "access_token": "QUERYSECRET95",
        "sig": "QUERY/SECRET+94==",
        "Signature": "QUERYSECRET93",
        "password": "QUERY SECRET 92",
        "SECRET": "QUERYSECRET91",
        "api-version": "2024-06-01",
        "keep": "visible",
    }
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, default_query=query) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert urllib.parse.parse_qsl(request.query) == [
        ("api-key", "<redacted>"),
        ("API_KEY", "<redacted>"),
        ("Key", "<redacted>"),
        ("token", "<redacted>"),
        ("access_token", "<redacted>"),
        ("sig", "<redacted>"),
        ("Signature", "<redacted>"),
        ("password", "<redacted>"),
        ("SECRET", "<redacted>"),
        ("api-version", "2024-06-01"),
        ("keep", "visible"),
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "rlm_toolkit.testing"]
    (line,) = [m for m in lines if "/v1/chat/completions" in m]
    assert line == (
        'offline OpenAI server: "POST /v1/chat/completions?api-key=<redacted>&API_KEY=<redacted>'
        "&Key=<redacted>&token=<redacted>&access_token=<redacted>&sig=<redacted>"
        "&Signature=<redacted>&password=<redacted>&SECRET=<redacted>"
        '&api-version=2024-06-01&keep=visible HTTP/1.1" 200 -'
    )
    assert "SECRET9" not in repr(server.requests) + "\n".join(lines)


def test_redact_query_edge_cases() -> None:
    from rlm_toolkit.testing import redact_query

    assert redact_query("") == ""
    assert redact_query("a=1&b=2") == "a=1&b=2"
    assert redact_query("api%2Dkey=s1&api_key=&key") == "api%2Dkey=<redacted>&api_key=&key"
    assert redact_query("keyword=kept;token=s2#token=frag") == "keyword=kept;token=<redacted>#token=frag"
    assert redact_query("GET /v1/models?sig=a%2Bb HTTP/1.1") == "GET /v1/models?sig=<redacted> HTTP/1.1"


def test_queue_fault_validation(server: OpenAIServer) -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'nope'"):
        server.queue_fault("nope")
    with pytest.raises(ValueError, match="times"):
        server.queue_fault("reset", times=0)
    with pytest.raises(ValueError, match="status"):
        server.queue_fault("server_error", status=200)
    with pytest.raises(ValueError, match="queue_reply needs"):
        server.queue_reply()
    assert server.pending == (0, 0)
    assert {
        "rate_limit",
        "server_error",
        "unavailable",
        "bad_request",
        "unauthorized",
        "not_found",
        "slow",
        "reset",
        "cut_stream",
        "malformed_sse",
        "no_usage",
        "stream_error",
    } == FAULT_KINDS


@pytest.mark.parametrize("endpoint", ["chat", "responses", "completions"])
def test_stream_faults_on_every_streaming_endpoint(
    server: OpenAIServer, client: openai.OpenAI, endpoint: str
) -> None:
    def stream() -> list[object]:
        if endpoint == "chat":
            return list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        if endpoint == "responses":
            return list(client.responses.create(model="m", input="hello", stream=True))
        return list(client.completions.create(model="m", prompt="hello", stream=True))

    server.queue_fault("cut_stream", after_chunks=2)
    with pytest.raises(openai.APIConnectionError):
        stream()
    server.queue_fault("malformed_sse", after_chunks=2)
    with pytest.raises(json.JSONDecodeError):
        stream()
    complete = stream()
    assert len(complete) > 4
    assert [r.fault for r in server.requests] == ["cut_stream", "malformed_sse", None]
