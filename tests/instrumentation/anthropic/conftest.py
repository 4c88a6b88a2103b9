"""Fixtures: a real ``anthropic`` client over real HTTP to the offline server, with the SDK's
own tracing on (routed to the test's tracer provider, never a global one) or off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest

from rlm_toolkit.testing import OpenAIServer

from ..conftest import Otel


@pytest.fixture(params=["sdk_tracing_on", "sdk_tracing_off"])
def sdk_tracing(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "sdk_tracing_on")


def sdk_option(otel: Otel, on: bool) -> Any:
    """The client's ``open_telemetry`` option: its spans to the test's provider, or off."""
    return {"tracer_provider": otel.tracer_provider} if on else False


@pytest.fixture
def anth(server: OpenAIServer, otel: Otel, sdk_tracing: bool) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.url,
        api_key="sk-ant-test-secret",
        max_retries=2,
        open_telemetry=sdk_option(otel, sdk_tracing),
    ) as client:
        yield client


@pytest.fixture
async def aanth(
    server: OpenAIServer, otel: Otel, sdk_tracing: bool
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.url,
        api_key="sk-ant-test-secret",
        max_retries=2,
        open_telemetry=sdk_option(otel, sdk_tracing),
    ) as client:
        yield client
