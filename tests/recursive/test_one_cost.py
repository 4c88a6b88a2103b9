"""One cost (issue #17 item 3): a run's budget and result read the cost its LLM spans carry.

A ``gpt-4o-mini`` call through an OpenAI-compatible host other than OpenAI (the client believes
it talks to api.groq.com; a small transport sends every request to the offline server on
127.0.0.1) has no known price: its span carries no ``gen_ai.usage.cost``, and the run's budget
used to charge it OpenAI's price anyway. Now the budget charges nothing, ``RLMResult.cost`` is
None and ``by_model`` shows the model unpriced; a price the user sets applies to both alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import openai
import pytest

from rlm_toolkit import RLM, RLMConfig, pricing
from rlm_toolkit.testing import OpenAIServer, make_haystack

from .conftest import Otel

QUESTION = "What is the secret code?"
CHAT = "chat gpt-4o-mini"


class ToLoopback(httpx.HTTPTransport):
    """Sends every request to the offline server, keeping the endpoint of its path."""

    def __init__(self, server: OpenAIServer) -> None:
        super().__init__()
        self._url = httpx.URL(server.base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        request.url = request.url.copy_with(
            scheme=self._url.scheme,
            host=self._url.host,
            port=self._url.port,
            raw_path=(self._url.path.rstrip("/") + path[path.index("/chat/") :]).encode(),
        )
        return super().handle_request(request)


@pytest.fixture
def groq(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    with httpx.Client(transport=ToLoopback(server)) as http:
        yield openai.OpenAI(base_url="https://api.groq.com/openai/v1", api_key="sk-test", http_client=http)


def _span_costs(otel: Otel) -> list[object]:
    return [(s.attributes or {}).get("gen_ai.usage.cost") for s in otel.finished() if s.name == CHAT]


def test_an_unpriced_provider_costs_the_budget_nothing_and_says_so(groq: openai.OpenAI, otel: Otel) -> None:
    rlm = RLM(
        groq,
        model="gpt-4o-mini",
        tracer_provider=otel.tracer_provider,
        config=RLMConfig(max_cost_usd=0.000001),  # would stop at the first call if it were charged
    )
    result = rlm.run(QUESTION, context=make_haystack(20_000))
    providers = {(s.attributes or {}).get("gen_ai.provider.name") for s in otel.finished() if s.name == CHAT}
    assert providers == {"groq"}
    assert _span_costs(otel) and set(_span_costs(otel)) == {None}  # no price on any span
    assert result.status != "budget"
    assert result.cost is None
    assert result.by_model["gpt-4o-mini"].calls >= 2
    assert result.by_model["gpt-4o-mini"].cost is None  # shown as unpriced, not as $0 or OpenAI's


def test_a_user_price_applies_to_the_span_and_the_budget_alike(groq: openai.OpenAI, otel: Otel) -> None:
    pricing.set_price("gpt-4o-mini", input=1.0, output=2.0)
    try:
        rlm = RLM(groq, model="gpt-4o-mini", tracer_provider=otel.tracer_provider)
        result = rlm.run(QUESTION, context=make_haystack(20_000))
    finally:
        pricing._reset_overrides()
    costs = _span_costs(otel)
    assert costs and all(isinstance(c, float) for c in costs)
    assert result.cost == pytest.approx(sum(costs))  # type: ignore[arg-type]
    assert result.by_model["gpt-4o-mini"].cost == pytest.approx(sum(costs))  # type: ignore[arg-type]


def test_a_direct_run_reports_its_spans_cost(server: OpenAIServer, otel: Otel) -> None:
    rlm = RLM.from_openai(
        "gpt-4o-mini", api_key="sk-test", base_url=server.base_url, tracer_provider=otel.tracer_provider
    )
    result = rlm.run("Say hi")
    (cost,) = _span_costs(otel)
    assert isinstance(cost, float) and cost > 0
    assert result.cost == cost
