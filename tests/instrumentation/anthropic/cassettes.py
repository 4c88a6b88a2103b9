"""The recorded Anthropic traffic in ``../shared/cassettes/anthropic-genai/`` (README there):
loading, and replaying an interaction through the real SDK with vcrpy."""

from __future__ import annotations

import inspect
import json
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest
import yaml

CASSETTES = pathlib.Path(__file__).resolve().parents[3] / ".." / "shared" / "cassettes" / "anthropic-genai"
needs_cassettes = pytest.mark.skipif(not CASSETTES.is_dir(), reason="anthropic-genai cassettes not available")
#: Parameters ``messages.create`` takes as arguments; the rest of a recorded body (e.g.
#: ``temperature``, ``top_k``, ``top_p``, which anthropic 1.17+ dropped) goes in ``extra_body``.
_CREATE_PARAMS = frozenset(inspect.signature(anthropic.Anthropic(api_key="x").messages.create).parameters)


def names() -> list[str]:
    return sorted(p.stem for p in CASSETTES.glob("*.yaml")) if CASSETTES.is_dir() else []


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its response."""

    cassette: str
    index: int
    request: dict[str, Any]
    beta: bool
    status: int
    body: str
    content_type: str

    @property
    def stream(self) -> bool:
        return "event-stream" in self.content_type

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        """The SSE events as recorded: ``{"event": name, **data}`` in order."""
        out, name = [], None
        for line in self.body.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :].strip()
            elif line.startswith("data: "):
                out.append({"event": name, **json.loads(line[len("data: ") :])})
        return out

    def kwargs(self) -> dict[str, Any]:
        """The recorded body as ``messages.create`` kwargs of the installed SDK."""
        kwargs = {k: v for k, v in self.request.items() if k in _CREATE_PARAMS}
        extra = {k: v for k, v in self.request.items() if k not in _CREATE_PARAMS}
        if extra:
            kwargs["extra_body"] = extra
        return kwargs


def exchanges(name: str) -> list[Exchange]:
    data = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())
    out = []
    for index, interaction in enumerate(data["interactions"]):
        response = interaction["response"]
        headers = {k.lower(): v for k, v in response["headers"].items()}
        out.append(
            Exchange(
                cassette=name,
                index=index,
                request=json.loads(interaction["request"]["body"]),
                beta="beta=true" in interaction["request"]["uri"],
                status=response["status"]["code"],
                body=response["body"]["string"],
                content_type=(headers.get("content-type") or [""])[0],
            )
        )
    return out


def all_exchanges() -> list[Exchange]:
    return [e for name in names() for e in exchanges(name)]


@contextmanager
def replaying(name: str) -> Iterator[anthropic.Anthropic]:
    """A real client whose requests are answered from cassette ``name`` (one play per call)."""
    import vcr

    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"], decode_compressed_response=True)
    with (
        recorder.use_cassette(str(CASSETTES / f"{name}.yaml")),
        anthropic.Anthropic(api_key="test_anthropic_api_key", max_retries=0) as client,
    ):
        yield client


def replay(exchange: Exchange) -> Any:
    """The SDK's result for ``exchange``: a ``Message``, the list of stream events, or the
    raised ``APIStatusError``. Earlier exchanges of the cassette are played first."""
    with replaying(exchange.cassette) as client:
        result: Any = None
        for earlier in exchanges(exchange.cassette)[: exchange.index + 1]:
            messages: Any = client.beta.messages if earlier.beta else client.messages
            try:
                if earlier.stream:
                    result = list(messages.create(**{**earlier.kwargs(), "stream": True}))
                else:
                    result = messages.create(**earlier.kwargs())
            except anthropic.APIStatusError as error:
                result = error
        return result
