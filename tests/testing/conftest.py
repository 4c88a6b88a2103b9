"""Fixtures: one offline server per test, real ``openai`` clients pointed at it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from rlm_toolkit.testing import OpenAIServer


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rlm-openai-server")]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv
    assert server_threads() == [], "the server left threads running"


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0) as c:
        yield c
