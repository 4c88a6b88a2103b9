"""The on/off comparison: the same calls with the SDK's own tracing on and off export the same
spans (one per API call, ours), so token totals in a backend never double."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

import rlm_toolkit
from rlm_toolkit.testing import OpenAIServer

from ..conftest import Otel, instrument_with
from .conftest import sdk_option

MODEL = "claude-sonnet-4-5"
USER = [{"role": "user", "content": "Tell me about Paris."}]
#: Differ between any two runs (random ids, clocks), whatever the setting.
_VOLATILE = {"gen_ai.response.id", "gen_ai.response.time_to_first_chunk", "server.port"}


def _calls(server: OpenAIServer, option: Any) -> None:
    kw: Any = {"model": MODEL, "max_tokens": 40, "messages": USER}
    with anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=2, open_telemetry=option) as c:
        c.messages.create(**kw)
        list(c.messages.create(**kw, stream=True))
        with c.messages.stream(**kw) as s:
            s.get_final_message()
        with c.messages.stream(**kw) as s:
            for _ in s.text_stream:
                break
        server.queue_fault("unavailable", retry_after=0.01)
        c.messages.parse(**kw)
        c.beta.messages.create(**kw)
        server.queue_fault("bad_request")
        try:
            c.messages.create(**kw)
        except anthropic.BadRequestError:
            pass

    async def run() -> None:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key="k", open_telemetry=option) as a:
            await a.messages.create(**kw)
            async with a.messages.stream(**kw) as s:
                await s.get_final_message()

    asyncio.run(run())


def _export(otel: Otel, server: OpenAIServer, on: bool) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    otel.spans_exporter.clear()
    _calls(server, sdk_option(otel, on))
    return [
        (
            s.name,
            s.instrumentation_scope.name,  # type: ignore[union-attr]
            {k: v for k, v in (s.attributes or {}).items() if k not in _VOLATILE},
            [e.name for e in s.events],
        )
        for s in sorted(otel.spans(), key=lambda s: s.start_time or 0)
    ]


def test_sdk_tracing_on_and_off_export_the_same_spans(otel: Otel, server: OpenAIServer) -> None:
    instrument_with(otel, capture_content=True)
    try:
        on = _export(otel, server, True)
        off = _export(otel, server, False)
    finally:
        rlm_toolkit.uninstrument()
    assert len(on) == 9, [s[0] for s in on]  # one span per API call (9 calls)
    assert {scope for _, scope, _, _ in on} == {"rlm_toolkit.instrumentation.anthropic"}
    assert on == off
    outputs = [a.get("gen_ai.usage.output_tokens") for _, _, a, _ in on]
    assert all(isinstance(n, int) for n in outputs[:-3]), outputs
    # Uninstrumented, the SDK's tracing makes its own span per call: the comparison can fail.
    otel.spans_exporter.clear()
    _calls(server, sdk_option(otel, True))
    assert {s.instrumentation_scope.name for s in otel.spans()} == {"com.anthropic.sdk.python"}  # type: ignore[union-attr]
