"""Azure-style streams: the first chunk carries only ``prompt_filter_results`` (empty ``id`` and
``model``, no choices); the response id/model come from the first chunk that has them."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk

from rlm_toolkit._instrument import active_handler
from rlm_toolkit.genai import Invocation, StreamState
from rlm_toolkit.instrumentation.openai._chunks import ChatChunks

from .conftest import Otel


def chunk(id: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": id,
            "model": model,
            "object": "chat.completion.chunk",
            "created": 0,
            "choices": choices,
            **extra,
        }
    )


def delta(text: str | None, finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": finish}


AZURE = [
    chunk("", "", [], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}]),
    chunk("chatcmpl-az1", "gpt-4o-2024-11-20", [delta("Hel")]),
    chunk("chatcmpl-az1", "gpt-4o-2024-11-20", [delta("lo", "stop")]),
]


def run(chunks: list[ChatCompletionChunk]) -> None:
    handler = active_handler()
    assert handler is not None
    inv = Invocation(handler, "chat", "gpt-4o", "example.openai.azure.com", 443)
    inv.start({"gen_ai.request.model": "gpt-4o"}, None)
    handler = ChatChunks(inv)
    state = StreamState(inv, handler)
    for c in chunks:
        handler.on_chunk(c)
    state.end("completed")


def test_azure_first_chunk_without_id_or_model(plain_instrumented: Otel) -> None:
    run(AZURE)
    attrs = dict(plain_instrumented.span().attributes or {})
    expected = {
        "gen_ai.response.id": "chatcmpl-az1",
        "gen_ai.response.model": "gpt-4o-2024-11-20",
        "gen_ai.response.finish_reasons": ("stop",),
        "rlm.stream.chunk_count": 3,
    }
    assert {k: attrs.get(k) for k in expected} == expected


def test_first_values_win_over_later_chunks(plain_instrumented: Otel) -> None:
    run([chunk("id-1", "m-1", [delta("a")]), chunk("id-2", "m-2", [delta("b", "stop")])])
    attrs = dict(plain_instrumented.span().attributes or {})
    assert (attrs["gen_ai.response.id"], attrs["gen_ai.response.model"]) == ("id-1", "m-1")
