"""The seams the runtime (``RLM.from_anthropic``) reports through: a wrapper made for one
handler that hands its invocation back, and the retry report for a client whose
``_calculate_retry_timeout`` is overridden (a retry policy)."""

from __future__ import annotations

from typing import Any

import anthropic

from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.genai._context import REPORTED
from rlm_toolkit.instrumentation.anthropic._hooks import report_delay
from rlm_toolkit.instrumentation.anthropic._specs import MESSAGES_CREATE
from rlm_toolkit.instrumentation.anthropic._targets import ensure_hooks, unwrap_all
from rlm_toolkit.instrumentation.anthropic._wrappers import sync_call
from rlm_toolkit.testing import OpenAIServer

from ..conftest import Otel

USER = [{"role": "user", "content": "hi"}]


class PolicyClient(anthropic.Anthropic):
    """A retry policy: its own delay, reported through the seam."""

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        report_delay(0.0)
        return 0.0


def test_report_wrapper_and_retry_seam(otel: Otel, server: OpenAIServer) -> None:
    handler = TelemetryHandler(
        tracer_provider=otel.tracer_provider, logger_provider=otel.logger_provider, provider_name="anthropic"
    )
    wrapper = sync_call(handler, MESSAGES_CREATE, report=True)
    ensure_hooks()
    try:
        server.queue_fault("server_error")
        with PolicyClient(base_url=server.url, api_key="k", max_retries=1, open_telemetry=False) as client:
            kwargs: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 30, "messages": USER}
            # As the runtime's provider calls it: (bound SDK method, resource, args, kwargs).
            message = wrapper(client.messages.create, client.messages, (), kwargs)
        inv = REPORTED.get()
    finally:
        unwrap_all()
    span = otel.span()
    assert inv is not None and inv.ended and inv.span.get_span_context() == span.get_span_context()
    assert dict(span.attributes or {})["gen_ai.response.id"] == message.id
    [event] = span.events
    assert dict(event.attributes or {})["rlm.retry.delay_s"] == 0.0
    assert dict(event.attributes or {})["http.response.status_code"] == 500
