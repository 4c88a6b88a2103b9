"""``OpenAIInstrumentor.report_retry`` (the seam for client subclasses) and the errors handed to retry consumers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel
from .test_retries import PayloadSpy

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def spy(otel: Otel) -> Iterator[PayloadSpy]:
    spy = PayloadSpy()
    otel.logger_provider.add_log_record_processor(spy)
    yield spy


def retry_errors(spy: PayloadSpy) -> list[Any]:
    return [err for name, err in spy.seen if name == "rlm.retry"]


def retry_events(otel: Otel) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in otel.span().events if e.name == "rlm.retry"]


class FixedDelayClient(openai.OpenAI):
    """Like the runtime's retry policy: an override that hides the hook on the base class."""

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        delay = 0.005
        OpenAIInstrumentor.report_retry(self, delay, remaining_retries, options, response_headers)
        return delay


def test_override_reports_through_report_retry(
    plain_instrumented: Otel, spy: PayloadSpy, server: OpenAIServer
) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    client = FixedDelayClient(base_url=server.base_url, api_key="sk-test-secret", max_retries=2)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.close()
    assert retry_events(plain_instrumented) == [
        {
            "rlm.retry.attempt": 1,
            "rlm.retry.max_retries": 2,
            "rlm.retry.delay_s": 0.005,  # the delay the override really used
            "rlm.retry.retry_after_s": 0.01,
            "http.response.status_code": 429,
            "error.type": "RateLimitError",
        }
    ]
    assert dict(plain_instrumented.span().attributes or {})["rlm.request.attempts"] == 2
    (error,) = retry_errors(spy)
    assert isinstance(error, openai.RateLimitError)


def test_report_retry_is_a_no_op_outside_a_call(plain_instrumented: Otel, client: openai.OpenAI) -> None:
    options = type("Options", (), {"get_max_retries": lambda self, default: default})()
    OpenAIInstrumentor.report_retry(client, 1.0, 1, options, None)  # no instrumented call running
    OpenAIInstrumentor.report_retry(object(), 1.0, 1, object(), None)  # nonsense: still never raises
    assert plain_instrumented.spans() == [] and plain_instrumented.logs() == []


def test_status_error_carries_the_api_message(
    plain_instrumented: Otel, spy: PayloadSpy, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (error,) = retry_errors(spy)
    assert type(error) is openai.RateLimitError
    assert "Rate limit reached (injected fault)" in str(error)  # the body was read, as the SDK does
    assert error.status_code == 429
    assert isinstance(error.body, dict) and error.body["code"] == "rate_limit_exceeded"


def test_connection_error_is_what_the_sdk_raises(
    plain_instrumented: Otel, spy: PayloadSpy, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_fault("reset")
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (error,) = retry_errors(spy)
    assert type(error) is openai.APIConnectionError
    assert error.request.url.path.endswith("/chat/completions")
    (event,) = retry_events(plain_instrumented)
    assert event["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in event


def test_timeout_error_is_what_the_sdk_raises(
    plain_instrumented: Otel, spy: PayloadSpy, client: openai.OpenAI, server: OpenAIServer
) -> None:
    server.queue_fault("slow", delay=2)
    client.with_options(timeout=0.2, max_retries=1).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (error,) = retry_errors(spy)
    assert type(error) is openai.APITimeoutError
    (event,) = retry_events(plain_instrumented)
    assert event["error.type"] == "APITimeoutError"
