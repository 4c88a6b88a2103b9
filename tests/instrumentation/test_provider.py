"""Provider identity (issue #11): gen_ai.provider.name from the client, over real HTTP.

The SDK clients below believe they talk to api.groq.com, an Azure resource, etc.; a small httpx
transport sends every request to the offline server on 127.0.0.1 instead (real HTTP, nothing
leaves the machine), so the span sees the host the app configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from rlm_toolkit import pricing
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "Say hi"}]


class ToLoopback(httpx.HTTPTransport):
    """Sends every request to the offline server, keeping only the endpoint of its path."""

    def __init__(self, server: OpenAIServer) -> None:
        super().__init__()
        self._url = httpx.URL(server.base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        endpoint = path[path.index("/chat/") :] if "/chat/" in path else path[path.rindex("/") :]
        request.url = request.url.copy_with(
            scheme=self._url.scheme,
            host=self._url.host,
            port=self._url.port,
            raw_path=(self._url.path.rstrip("/") + endpoint).encode(),
        )
        return super().handle_request(request)


@pytest.fixture
def http(server: OpenAIServer) -> Iterator[httpx.Client]:
    with httpx.Client(transport=ToLoopback(server)) as client:
        yield client


def _call(client: Any, server: OpenAIServer, model: str = "gpt-4o") -> None:
    server.queue_reply("Hi!")
    client.chat.completions.create(model=model, messages=MESSAGES)


@pytest.mark.parametrize(
    ("base_url", "provider", "host"),
    [
        ("https://api.openai.com/v1", "openai", "api.openai.com"),
        ("https://api.groq.com/openai/v1", "groq", "api.groq.com"),
        ("https://api.deepseek.com/v1", "deepseek", "api.deepseek.com"),
        ("https://api.x.ai/v1", "x_ai", "api.x.ai"),
        ("https://api.mistral.ai/v1", "mistral_ai", "api.mistral.ai"),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "gcp.gemini",
            "generativelanguage.googleapis.com",
        ),
        ("https://api.perplexity.ai", "perplexity", "api.perplexity.ai"),
        ("https://openrouter.ai/api/v1", "openrouter", "openrouter.ai"),
        ("https://myres.openai.azure.com/openai/v1", "azure.ai.openai", "myres.openai.azure.com"),
        ("http://vllm.internal:8000/v1", "openai", "vllm.internal"),
    ],
)
def test_provider_from_host(
    plain_instrumented: Otel,
    server: OpenAIServer,
    http: httpx.Client,
    base_url: str,
    provider: str,
    host: str,
) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test-secret", http_client=http, max_retries=0)
    _call(client, server)
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["gen_ai.provider.name"] == provider
    assert attrs["server.address"] == host  # always the real host
    # Cost only where the bundled (OpenAI) table applies: never OpenAI's price for another provider.
    assert ("gen_ai.usage.cost" in attrs) is (provider == "openai")
    (point,) = plain_instrumented.metrics()["gen_ai.client.operation.duration"]
    assert point.attributes["gen_ai.provider.name"] == provider


def test_azure_client_class(plain_instrumented: Otel, server: OpenAIServer, http: httpx.Client) -> None:
    """An Azure client is azure.ai.openai whatever its host (e.g. behind a gateway)."""
    client = openai.AzureOpenAI(
        azure_endpoint="https://gateway.example.com",
        api_key="sk-test-secret",
        api_version="2024-10-21",
        http_client=http,
        max_retries=0,
    )
    _call(client, server)
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["server.address"] == "gateway.example.com"
    assert "gen_ai.usage.cost" not in attrs
    events = plain_instrumented.logs()
    assert all(
        r.attributes.get("gen_ai.provider.name", "azure.ai.openai") == "azure.ai.openai" for r in events
    )


def test_user_price_applies_to_any_provider(
    plain_instrumented: Otel, server: OpenAIServer, http: httpx.Client
) -> None:
    pricing.set_price("gpt-4o", input=1.0, output=2.0)
    try:
        client = openai.OpenAI(base_url="https://api.groq.com/openai/v1", api_key="sk-x", http_client=http)
        _call(client, server)
    finally:
        pricing._reset_overrides()
    attrs = dict(plain_instrumented.span().attributes or {})
    expected = (attrs["gen_ai.usage.input_tokens"] * 1.0 + attrs["gen_ai.usage.output_tokens"] * 2.0) / 1e6
    assert attrs["gen_ai.usage.cost"] == pytest.approx(expected)


def test_loopback_server_is_openai(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer
) -> None:
    """The documented rule for anything else: the API it speaks (openai), priced as OpenAI."""
    _call(client, server)
    attrs = dict(plain_instrumented.span().attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["gen_ai.usage.cost"] > 0


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("API.GROQ.COM", "groq"),
        ("eu.api.x.ai", "x_ai"),
        ("x.cognitiveservices.azure.com", "azure.ai.openai"),
        ("azure.com", "openai"),
        ("notapi.openai.com", "openai"),
        ("localhost", "openai"),
        (None, "openai"),
    ],
)
def test_provider_for_host_rule(host: str | None, provider: str) -> None:
    from rlm_toolkit.instrumentation.openai._provider import provider_for_host

    assert provider_for_host(host) == provider


def test_estimate_cost_follows_provider() -> None:
    kwargs: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 10}
    assert pricing.estimate_cost("gpt-4o", **kwargs) == pricing.estimate_cost(
        "gpt-4o", provider="openai", **kwargs
    )
    assert pricing.estimate_cost("gpt-4o", provider="groq", **kwargs) is None
