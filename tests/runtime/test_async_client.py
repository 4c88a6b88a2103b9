"""``arun`` on a user's sync client sends what ``run`` sends, or refuses in one line."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from rlm_toolkit.runtime import RLM
from rlm_toolkit.testing import OpenAIServer, RecordedRequest

from .helpers import API_KEY

#: Headers the SDK itself derives from the client class: the only allowed differences.
CLASS_HEADERS = ("user-agent", "x-stainless-async")


def _shape(request: RecordedRequest) -> tuple[str, str, str, dict[str, str], object]:
    headers = {k: v for k, v in request.headers.items() if k not in CLASS_HEADERS}
    return request.method, request.path, request.query, headers, request.body


async def _run_then_arun(rlm: RLM, server: OpenAIServer) -> tuple[RecordedRequest, RecordedRequest]:
    first = rlm.run("same", raise_on_error=False)
    second = await rlm.arun("same", raise_on_error=False)
    assert type(first.error) is type(second.error)
    sync_request, async_request = server.requests
    assert async_request.headers["x-stainless-async"] == "async:asyncio"
    assert sync_request.headers["x-stainless-async"] == "false"
    assert _shape(sync_request) == _shape(async_request)
    return sync_request, async_request


@pytest.fixture
def azure(server: OpenAIServer) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=server.url,
        api_version="2024-06-01",
        api_key=API_KEY,
        default_query={"tenant": "t1"},
        default_headers={"x-app": "tutorial"},
        timeout=7.0,
        max_retries=1,
    ) as client:
        yield client


async def test_azure_client_keeps_deployment_path_api_version_and_headers(
    azure: openai.AzureOpenAI, server: OpenAIServer
) -> None:
    rlm = RLM(azure, model="gpt-4o")
    request, _ = await _run_then_arun(rlm, server)
    # (The offline server has no Azure routes: both calls fail alike with a 404; what matters
    # is that arun asked for the same thing.)
    assert (request.path, request.query) == (
        "/openai/deployments/gpt-4o/chat/completions",
        "tenant=t1&api-version=2024-06-01",
    )
    assert request.headers["api-key"] == "<redacted>" and request.headers["x-app"] == "tutorial"
    twin = rlm.async_client
    assert type(twin) is openai.AsyncAzureOpenAI
    assert (twin.timeout, twin.max_retries, twin._api_version) == (7.0, 1, "2024-06-01")


async def test_azure_client_with_deployment_and_token_provider(server: OpenAIServer) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=server.url,
        azure_deployment="prod-4o",
        api_version="2024-10-21",
        azure_ad_token_provider=lambda: "entra-token",
        organization="org-9",
    ) as client:
        rlm = RLM(client, model="gpt-4o")
        request, _ = await _run_then_arun(rlm, server)
    assert (request.path, request.query) == (
        "/openai/deployments/prod-4o/chat/completions",
        "api-version=2024-10-21",
    )
    assert request.headers["authorization"] == "<redacted>"
    assert request.headers["openai-organization"] == "org-9"
    assert "api-key" not in request.headers


async def test_azure_client_with_base_url(server: OpenAIServer) -> None:
    with openai.AzureOpenAI(base_url=server.base_url, api_version="2024-06-01", api_key=API_KEY) as client:
        request, _ = await _run_then_arun(RLM(client, model="gpt-4o"), server)
    assert (request.path, request.query) == (
        "/v1/deployments/gpt-4o/chat/completions",
        "api-version=2024-06-01",
    )


async def test_plain_client_keeps_query_headers_org_project_timeout_and_retries(server: OpenAIServer) -> None:
    with openai.OpenAI(
        base_url=server.base_url,
        api_key=API_KEY,
        organization="org-1",
        project="proj-1",
        default_query={"trace": "on"},
        default_headers={"x-app": "tutorial"},
        timeout=3.5,
        max_retries=0,
    ) as client:
        rlm = RLM(client, model="gpt-4o")
        request, _ = await _run_then_arun(rlm, server)
        twin = rlm.async_client
    assert (request.path, request.query) == ("/v1/chat/completions", "trace=on")
    assert (request.headers["openai-organization"], request.headers["openai-project"]) == ("org-1", "proj-1")
    assert type(twin) is openai.AsyncOpenAI
    assert (twin.timeout, twin.max_retries, str(twin.base_url)) == (3.5, 0, str(client.base_url))


class MyClient(openai.OpenAI):
    pass


async def test_a_client_that_cannot_be_mirrored_is_refused_at_arun(server: OpenAIServer) -> None:
    with MyClient(base_url=server.base_url, api_key=API_KEY) as custom:
        rlm = RLM(custom, model="gpt-4o")
        assert rlm.run("sync works").answer
        with pytest.raises(TypeError) as info:
            await rlm.arun("refused")
    assert str(info.value) == "pass async_client=... to RLM(...) to use arun with a MyClient client"
    with (
        httpx2.Client() as transport,
        openai.OpenAI(base_url=server.base_url, api_key=API_KEY, http_client=transport) as own,
        pytest.raises(TypeError) as info,
    ):
        await RLM(own, model="gpt-4o").arun("refused")
    assert str(info.value) == (
        "pass async_client=... to RLM(...) to use arun with a OpenAI client (it has a custom http_client)"
    )
    assert [r.body["messages"][0]["content"] for r in server.requests] == ["sync works"]  # nothing sent


async def test_an_explicit_async_client_is_used_as_is(server: OpenAIServer) -> None:
    with MyClient(base_url=server.base_url, api_key=API_KEY) as custom:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY) as given:
            rlm = RLM(custom, model="gpt-4o", async_client=given)
            assert rlm.async_client is given
            assert (await rlm.arun("hi")).answer
