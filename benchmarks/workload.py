"""The benchmark workload: real ``openai`` clients over an in-process mock transport.

No sockets and no server: the transport answers from canned bytes, so what is measured is the
SDK's own work (request building, parsing, SSE decoding) plus whatever instrumentation adds.
This file imports only ``openai`` and ``httpx2`` so it runs unchanged in the peers' venvs.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello in one short sentence."},
]

_CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, nice to meet you!"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29},
    }
).encode()

_EMBED = json.dumps(
    {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.01 * i for i in range(64)]}],
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
).encode()


def _sse(chunks: int, usage: bool = True) -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
    }
    out = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        out.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:  # only when the request asked for it, as the API does
        out.append(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 21, "completion_tokens": chunks, "total_tokens": 21 + chunks},
            }
        )
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in out) + "data: [DONE]\n\n"
    return body.encode()


_STREAMS: dict[tuple[int, bool], bytes] = {}


def _handler(request: httpx2.Request) -> httpx2.Response:
    path = request.url.path
    if path.endswith("/embeddings"):
        return httpx2.Response(200, content=_EMBED, headers={"content-type": "application/json"})
    body = json.loads(request.content)
    if body.get("stream"):
        n = int(request.headers.get("x-bench-chunks", "10"))
        options = body.get("stream_options") or {}
        key = (n, options.get("include_usage") is True)
        data = _STREAMS.get(key) or _STREAMS.setdefault(key, _sse(*key))
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=_CHAT, headers={"content-type": "application/json"})


async def _ahandler(request: httpx2.Request) -> httpx2.Response:
    return _handler(request)


def sync_client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )


def async_client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_ahandler)),
    )


def chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]


def stream(client: openai.OpenAI, chunks: int, usage: bool = True) -> None:
    """A stream of ``chunks`` content chunks; ``usage``: the app asks for the usage chunk."""
    s = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True} if usage else openai.omit,
        extra_headers={"x-bench-chunks": str(chunks)},
    )
    for _ in s:
        pass


async def achat(client: openai.AsyncOpenAI) -> None:
    await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]


def embed(client: openai.OpenAI) -> None:
    client.embeddings.create(model="text-embedding-3-small", input="hello world")
