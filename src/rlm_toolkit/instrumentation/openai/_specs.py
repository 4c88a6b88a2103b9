"""What each instrumented SDK surface is: operation, API label, extractors, chunk handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA

from rlm_toolkit.genai import ChunkHandler, Invocation
from rlm_toolkit.instrumentation.openai import _request as rq
from rlm_toolkit.instrumentation.openai import _response as rs
from rlm_toolkit.instrumentation.openai._chunks import ChatChunks, ResponseEvents

_CHAT = GA.GenAiOperationNameValues.CHAT.value
_TEXT_COMPLETION = GA.GenAiOperationNameValues.TEXT_COMPLETION.value
_EMBEDDINGS = GA.GenAiOperationNameValues.EMBEDDINGS.value


@dataclass(frozen=True)
class ApiSpec:
    api: str  # value of rlm.openai.api
    operation: str  # gen_ai.operation.name
    params: rq.Params
    on_response: Callable[[Invocation, Any], None]
    #: kwarg holding the messages/prompt and its converter (None: no content, e.g. embeddings)
    content_key: str | None = None
    to_messages: Callable[[Any], list[dict[str, Any]]] | None = None
    #: kwarg holding system instructions given separately (Responses API ``instructions``)
    system_key: str | None = None
    tools: bool = False
    chunks: Callable[[Invocation], ChunkHandler] | None = None
    #: The opt-in stream usage (``include_usage``) applies: chat completions only.
    stream_usage: bool = False


def _chat_chunks(inv: Invocation) -> ChunkHandler:
    return ChatChunks(inv)


def _completion_chunks(inv: Invocation) -> ChunkHandler:
    return ChatChunks(inv, legacy=True)


def _response_events(inv: Invocation) -> ChunkHandler:
    return ResponseEvents(inv)


def _chat(api: str) -> ApiSpec:
    return ApiSpec(
        api,
        _CHAT,
        rq.CHAT_PARAMS,
        rs.chat_response,
        content_key="messages",
        to_messages=rq.chat_messages,
        tools=True,
        chunks=_chat_chunks,
        stream_usage=True,
    )


def _responses(api: str) -> ApiSpec:
    return ApiSpec(
        api,
        _CHAT,
        rq.RESPONSES_PARAMS,
        rs.responses_response,
        content_key="input",
        to_messages=rq.responses_input,
        system_key="instructions",
        tools=True,
        chunks=_response_events,
    )


CHAT_CREATE = _chat("chat.completions.create")
CHAT_PARSE = _chat("chat.completions.parse")
RESPONSES_CREATE = _responses("responses.create")
RESPONSES_PARSE = _responses("responses.parse")
#: Embeddings carry no content attributes, even with capture on: the conventions' embeddings
#: span defines none (``gen_ai.input.messages`` is for inference spans, and the input of an
#: embeddings call is not a message), and we do not invent one. In-process consumers still see
#: the input as ``Payload.request["input"]``.
EMBEDDINGS_CREATE = ApiSpec("embeddings.create", _EMBEDDINGS, rq.EMBEDDINGS_PARAMS, rs.embeddings_response)
COMPLETIONS_CREATE = ApiSpec(
    "completions.create",
    _TEXT_COMPLETION,
    rq.COMPLETION_PARAMS,
    rs.completion_response,
    content_key="prompt",
    to_messages=rq.completion_prompt,
    chunks=_completion_chunks,
)
#: Labels of the ``.stream()`` helpers (they call ``create(stream=True)`` on ``__enter__``).
CHAT_STREAM = "chat.completions.stream"
RESPONSES_STREAM = "responses.stream"
