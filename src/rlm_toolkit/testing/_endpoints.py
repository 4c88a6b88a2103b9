"""The smaller endpoints: legacy ``/v1/completions``, ``/v1/embeddings`` and ``/v1/models``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from rlm_toolkit.testing import _model
from rlm_toolkit.testing._script import Reply
from rlm_toolkit.testing._wire import Answer, ApiError, Call, Planned, SseEvent, chat_usage, plan

#: Models listed by ``GET /v1/models`` (any model name is accepted by the other endpoints).
MODELS: tuple[str, ...] = (
    "gpt-3.5-turbo-instruct",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3-mini",
    "text-embedding-3-large",
    "text-embedding-3-small",
    "text-embedding-ada-002",
)
_MODEL_CREATED = 1_700_000_000
_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
_DEFAULT_DIMENSIONS = 1536


def _model_json(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _MODEL_CREATED, "owned_by": "rlm-toolkit-offline"}


def list_models(call: Call) -> Answer:
    return Answer(body={"object": "list", "data": [_model_json(m) for m in MODELS]})


def retrieve_model(call: Call) -> Answer:
    if call.path_param not in MODELS:
        raise ApiError(
            404,
            f"The model '{call.path_param}' does not exist",
            param="model",
            code="model_not_found",
        )
    return Answer(body=_model_json(call.path_param))


def _prompts(call: Call) -> list[str]:
    prompt = call.body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise ApiError(400, "Invalid 'prompt': expected a string or an array of strings.", param="prompt")


def completions(call: Call) -> Answer:
    model = call.model()
    prompts = _prompts(call)
    n = call.int_param("n", minimum=1) or 1
    max_tokens = call.int_param("max_tokens")
    if max_tokens is None:
        max_tokens = 16  # the legacy API's default
    stop = call.stop_param()
    choices = [
        # Legacy completions have no tool calls: a scripted reply contributes its text only.
        plan(Reply(text=call.next_reply([prompt], variant).text or ""), max_tokens=max_tokens, stop=stop)
        for prompt in prompts
        for variant in range(n)
    ]
    prompt_tokens = sum(_model.count_tokens(p) for p in prompts)
    usage = chat_usage(prompt_tokens, sum(c.completion_tokens for c in choices))
    head = {"id": call.new_id("cmpl-"), "object": "text_completion", "created": call.created, "model": model}
    if call.streaming:
        options = call.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return Answer(events=_stream(head, choices, usage if include_usage and not call.omit_usage else None))
    body = {
        **head,
        "choices": [
            {"text": c.text or "", "index": i, "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(choices)
        ],
        "usage": usage,
    }
    return Answer(body=body)


def _stream(head: dict[str, Any], choices: list[Planned], usage: dict[str, Any] | None) -> Iterator[SseEvent]:
    for index, choice in enumerate(choices):
        for token in _model.tokenize(choice.text or ""):
            piece = {"text": token, "index": index, "logprobs": None, "finish_reason": None}
            yield SseEvent({**head, "choices": [piece]}, token=True)
        last = {"text": "", "index": index, "logprobs": None, "finish_reason": choice.finish_reason}
        yield SseEvent({**head, "choices": [last]})
    if usage is not None:
        yield SseEvent({**head, "choices": [], "usage": usage})


def _inputs(call: Call) -> list[str]:
    raw = call.body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'input' must be a non-empty string or array.", param="input")
    texts: list[str] = []
    for item in raw:
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            return [" ".join(str(t) for t in raw)]  # one array of token ids
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            texts.append(" ".join(str(t) for t in item))
        else:
            raise ApiError(400, "'input' items must be non-empty strings or token arrays.", param="input")
    return texts


def embeddings(call: Call) -> Answer:
    model = call.model()
    texts = _inputs(call)
    native = _EMBEDDING_DIMENSIONS.get(model, _DEFAULT_DIMENSIONS)
    dimensions = call.int_param("dimensions", minimum=1) or native
    if dimensions > native:
        raise ApiError(400, f"This model supports at most {native} dimensions.", param="dimensions")
    encoding = call.body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vector = _model.embedding(text, dimensions)
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(_model.embedding_base64(vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(_model.count_tokens(t) for t in texts)
    return Answer(
        body={
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
