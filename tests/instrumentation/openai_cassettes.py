"""Replaying the recorded OpenAI traffic in ``../shared/cassettes/openai-contrib`` through the
real SDK (vcrpy plays the recorded HTTP), shared by the cassette tests."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import openai
import yaml

CASSETTES = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "cassettes" / "openai-contrib"


def _json_body(r1: Any, r2: Any) -> None:
    a, b = json.loads(r1.body or b"null"), json.loads(r2.body or b"null")
    # Newer SDKs ask embeddings for base64 by default (and decode it); the recording predates that.
    if isinstance(a, dict) and isinstance(b, dict) and ("encoding_format" in a) != ("encoding_format" in b):
        a.pop("encoding_format", None)
        b.pop("encoding_format", None)
    assert a == b


def _method(client: Any, path: str) -> Any:
    if path.endswith("/chat/completions"):
        return client.chat.completions.create
    if path.endswith("/embeddings"):
        return client.embeddings.create
    return client.responses.create


def interactions(name: str) -> list[dict[str, Any]]:
    """The recorded request/response pairs of cassette ``name``, in order."""
    return yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"]  # type: ignore[no-any-return]


async def replay(name: str, is_async: bool, *, first_only: bool = False) -> None:
    """The interactions of cassette ``name`` (or its first), in order, through the real SDK:
    streams read to the end; an HTTP error must be the one the cassette recorded."""
    import vcr

    recorded = interactions(name)[:1] if first_only else interactions(name)
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path", "json_body"])
    recorder.register_matcher("json_body", _json_body)
    with recorder.use_cassette(str(CASSETTES / f"{name}.yaml")):
        client: Any = (openai.AsyncOpenAI if is_async else openai.OpenAI)(
            api_key="test_openai_api_key", max_retries=0
        )
        for interaction in recorded:
            request = json.loads(interaction["request"]["body"])
            status = interaction["response"]["status"]["code"]
            call = _method(client, interaction["request"]["uri"])
            try:
                result = call(**request)
                if is_async:
                    result = await result
                if request.get("stream"):
                    chunks = [c async for c in result] if is_async else list(result)
                    assert chunks
            except openai.APIStatusError as exc:
                assert exc.status_code == status >= 400
        if is_async:
            await client.close()
        else:
            client.close()
