"""Responses API, embeddings, legacy completions and models through the real ``openai`` client."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from rlm_toolkit.testing import OpenAIServer

TOOL = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
EVENT_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
TEXT_TAIL = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


# -- Responses API ----------------------------------------------------------------------------
def test_responses_plain_shape(client: openai.OpenAI) -> None:
    result = client.responses.create(
        model="gpt-4o", input="Write a haiku about coding", instructions="Be kind."
    )
    assert isinstance(result, Response)
    assert (result.object, result.status, result.model, result.instructions) == (
        "response",
        "completed",
        "gpt-4o",
        "Be kind.",
    )
    assert result.id.startswith("resp_")
    (message,) = result.output
    assert isinstance(message, ResponseOutputMessage)
    assert (message.role, message.status, message.content[0].type) == (
        "assistant",
        "completed",
        "output_text",
    )
    assert result.output_text == "Coding, line by line,\nSoft light on the terminal,\nMorning stillness hums."
    assert result.usage is not None
    # system + user message: 3 priming + 2 x 3 overhead + 3 ("Be kind.") + 5 tokens.
    assert result.usage.model_dump(exclude_none=True) == {
        "input_tokens": 17,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 16,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 33,
    }


def test_responses_input_as_message_list(client: openai.OpenAI) -> None:
    result = client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "input_text", "text": "second question?"}]},
        ],
    )
    assert result.output_text.startswith("You said: second question? ")


def test_responses_stream_event_sequence_and_equality(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="gpt-4o", input="hello stream")
    events = list(client.responses.create(model="gpt-4o", input="hello stream", stream=True))
    kinds = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert kinds == [
        *EVENT_SEQUENCE,
        *["response.output_text.delta"] * len(deltas),
        *TEXT_TAIL,
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(d.delta for d in deltas) == plain.output_text
    assert len(deltas) == plain.usage.output_tokens  # type: ignore[union-attr]
    created, completed = events[0], events[-1]
    assert created.response.status == "in_progress" and created.response.output == []  # type: ignore[union-attr]
    assert completed.response.usage == plain.usage  # type: ignore[union-attr]
    assert completed.response.output_text == plain.output_text  # type: ignore[union-attr]


def test_responses_function_calls(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_reply(tool_calls=[TOOL])
    server.queue_reply(tool_calls=[TOOL])
    plain = client.responses.create(model="gpt-4o", input="weather?")
    (call,) = plain.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.type, call.name, call.arguments, call.status) == (
        "function_call",
        "get_weather",
        '{"city": "Paris"}',
        "completed",
    )
    assert call.call_id.startswith("call_")
    with client.responses.stream(model="gpt-4o", input="weather?") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert kinds.count("response.function_call_arguments.delta") > 3
    assert final.output[0].model_dump(exclude_none=True) == call.model_dump(exclude_none=True) | {
        "id": final.output[0].id  # type: ignore[union-attr]
    }


def test_responses_function_call_output_turn(client: openai.OpenAI) -> None:
    result = client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "rainy"},
        ],
    )
    assert result.output_text.startswith("The tool returned: rainy. ")


def test_responses_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    result = client.responses.create(model="gpt-4o", input="Write a haiku about coding", max_output_tokens=2)
    assert result.status == "incomplete"
    assert result.incomplete_details is not None and result.incomplete_details.reason == "max_output_tokens"
    assert result.output_text == "Coding,"


def test_responses_no_usage_fault(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.queue_fault("no_usage")
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is None  # type: ignore[union-attr]


async def test_responses_async_stream(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.responses.create(model="gpt-4o", input="hello", stream=True)
    text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
    assert text.startswith("You said: hello. ")


# -- embeddings -------------------------------------------------------------------------------
def test_embeddings_float_batch_and_dimensions(server: OpenAIServer, client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta gamma"], dimensions=16, encoding_format="float"
    )
    assert isinstance(result, CreateEmbeddingResponse)
    assert (result.object, result.model) == ("list", "text-embedding-3-small")
    assert [(d.index, d.object, len(d.embedding)) for d in result.data] == [
        (0, "embedding", 16),
        (1, "embedding", 16),
    ]
    assert result.usage.model_dump() == {"prompt_tokens": 3, "total_tokens": 3}
    for d in result.data:
        assert math.isclose(math.sqrt(sum(v * v for v in d.embedding)), 1.0, rel_tol=1e-5)
    assert result.data[0].embedding != result.data[1].embedding
    again = client.embeddings.create(
        model="text-embedding-3-small", input="alpha", dimensions=16, encoding_format="float"
    )
    assert again.data[0].embedding == result.data[0].embedding
    assert server.requests[0].body["encoding_format"] == "float"


def test_embeddings_base64_decodes_to_the_same_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="text-embedding-3-large", input="x", encoding_format="float")
    assert len(floats.data[0].embedding) == 3072
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-large", input="x", encoding_format="base64"
    )
    wire = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(wire, str)
    decoded = list(struct.unpack("<3072f", base64.b64decode(wire)))
    assert decoded == floats.data[0].embedding
    # The SDK's default request (no encoding_format) parses too.
    default = client.embeddings.create(model="text-embedding-3-large", input="x")
    assert list(default.data[0].embedding) == floats.data[0].embedding


def test_embeddings_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="at most 1536 dimensions"):
        client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=5000)
    with pytest.raises(openai.BadRequestError, match="'input'"):
        client.embeddings.create(model="text-embedding-3-small", input=[])


# -- legacy completions -----------------------------------------------------------------------
def test_completions_plain_and_stream(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=50)
    assert (plain.object, plain.model) == ("text_completion", "gpt-3.5-turbo-instruct")
    (choice,) = plain.choices
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.text.startswith("You said: Say hi. ")
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Say hi",
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage


def test_completions_default_max_tokens_is_16(client: openai.OpenAI) -> None:
    result = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["a", "b"])
    assert [(c.index, c.finish_reason) for c in result.choices] == [(0, "length"), (1, "length")]
    assert result.usage is not None and result.usage.completion_tokens == 32


# -- models -----------------------------------------------------------------------------------
def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert "gpt-4o" in ids and "text-embedding-3-small" in ids
    assert all(m.object == "model" for m in models)
    assert client.models.retrieve("gpt-4o").model_dump(exclude_none=True) == {
        "id": "gpt-4o",
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "rlm-toolkit-offline",
    }
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


# -- routing and malformed requests -----------------------------------------------------------
def test_unknown_route_is_the_real_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.post("/nope", cast_to=object, body={})
    assert info.value.body == {
        "message": "Invalid URL (POST /v1/nope)",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
    assert info.value.response.headers["x-request-id"].startswith("req_")


def test_malformed_json_is_a_400(server: OpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="could not parse the JSON body"):
        client.post(
            "/chat/completions",
            cast_to=object,
            content=b"{not json",
            options={"headers": {"content-type": "application/json"}},
        )
    assert server.requests[-1].body is None


def test_completions_use_only_the_text_of_a_scripted_reply(
    server: OpenAIServer, client: openai.OpenAI
) -> None:
    server.queue_reply("plain words", tool_calls=[TOOL])
    server.queue_reply(tool_calls=[TOOL])
    first = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x")
    second = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x")
    assert [(c.text, c.finish_reason) for c in (*first.choices, *second.choices)] == [
        ("plain words", "stop"),
        ("", "stop"),
    ]
