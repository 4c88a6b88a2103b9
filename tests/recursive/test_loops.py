"""One RLM serves several event loops (``asyncio.run()`` after ``asyncio.run()``)."""

from __future__ import annotations

import asyncio

import openai

from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer

from .conftest import API_KEY, Otel, make_rlm


def test_one_rlm_across_several_asyncio_runs(server: OpenAIServer, otel: Otel) -> None:
    # Before: every second asyncio.run() failed with "Event loop is closed" (the cached async
    # client was bound to the first loop).
    rlm = make_rlm(server, otel)
    answers = [
        asyncio.run(rlm.arun("What is the secret code?", context="the secret code is 7")) for _ in range(3)
    ]
    assert [a.status for a in answers] == ["final"] * 3
    assert [asyncio.run(rlm.arun("hi")).error for _ in range(2)] == [None, None]


def test_one_loop_keeps_one_client_and_a_given_client_is_kept(server: OpenAIServer) -> None:
    rlm = RLM.from_openai("gpt-4o-mini", api_key=API_KEY, base_url=server.base_url)

    async def twice() -> bool:
        return rlm.async_client is rlm.async_client

    assert asyncio.run(twice())
    given = openai.AsyncOpenAI(api_key=API_KEY, base_url=server.base_url)
    mine = RLM(async_client=given, model="gpt-4o-mini")

    async def same() -> object:
        return mine.async_client

    assert asyncio.run(same()) is given
    assert asyncio.run(same()) is given
