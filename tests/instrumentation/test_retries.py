"""SDK retries are visible on the one logical span, as log events, and as a metric."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LogRecordProcessor

from rlm_toolkit.genai import Consumer, current_payload

from .conftest import Otel

MESSAGES = [{"role": "user", "content": "hi"}]


class PayloadSpy(LogRecordProcessor, Consumer):  # type: ignore[misc]
    wants_payload = True  # reads the in-process payload, so the handler builds one

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Any]] = []

    def on_emit(self, log_record: Any) -> None:
        payload = current_payload()
        self.seen.append((log_record.log_record.event_name, payload.error if payload else None))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.fixture
def spy(otel: Otel) -> Iterator[PayloadSpy]:
    spy = PayloadSpy()
    otel.logger_provider.add_log_record_processor(spy)
    yield spy


def check_retry(otel: Otel, spy: PayloadSpy) -> None:
    span = otel.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.request.attempts"] == 2
    (event,) = [e for e in span.events if e.name == "rlm.retry"]
    assert dict(event.attributes or {}) == {
        "rlm.retry.attempt": 1,
        "rlm.retry.max_retries": 2,
        "rlm.retry.delay_s": 0.01,
        "rlm.retry.retry_after_s": 0.01,
        "http.response.status_code": 429,
        "error.type": "RateLimitError",
    }
    (record,) = otel.logs("rlm.retry")
    assert dict(record.attributes) == dict(event.attributes or {})
    assert record.span_id == span.context.span_id
    # the record carries the event time (not only observed_timestamp), equal to the span event's
    assert record.timestamp is not None and record.timestamp == event.timestamp
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time < record.timestamp <= record.observed_timestamp < span.end_time
    errors = [err for name, err in spy.seen if name == "rlm.retry"]
    assert len(errors) == 1 and isinstance(errors[0], openai.RateLimitError)
    (retries,) = otel.metrics()["rlm.client.retries"]
    assert retries.value == 1


def test_sync_retry(plain_instrumented: Otel, spy: PayloadSpy, client: openai.OpenAI, server: Any) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    check_retry(plain_instrumented, spy)


async def test_async_retry(
    plain_instrumented: Otel, spy: PayloadSpy, aclient: openai.AsyncOpenAI, server: Any
) -> None:
    server.queue_fault("rate_limit", retry_after=0.01)
    await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    check_retry(plain_instrumented, spy)


def test_retries_exhausted(plain_instrumented: Otel, client: openai.OpenAI, server: Any) -> None:
    server.queue_fault("server_error", times=3, retry_after=0.01)
    fast = client.with_options(max_retries=2, timeout=5)
    with pytest.raises(openai.InternalServerError):
        fast.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    span = plain_instrumented.span()
    attrs = dict(span.attributes or {})
    assert attrs["rlm.request.attempts"] == 3, [dict(e.attributes) for e in span.events]
    assert attrs["error.type"] == "InternalServerError"
    assert [e.attributes["rlm.retry.attempt"] for e in span.events if e.name == "rlm.retry"] == [1, 2]
