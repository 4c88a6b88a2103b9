"""What happens to a model call the run stops waiting for at its ``max_seconds`` deadline.

Sync runs wait on the call from a daemon thread and give up at the deadline; the call itself
goes on until its request timeout (the time that was left when it started), and the client's
retries still apply to it. Its spend is on its own ``chat`` span, never in the run's result
(the README's ``max_seconds`` bullet states this bound). Async runs cancel the call instead.
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry.sdk.trace import ReadableSpan

from rlm_toolkit import RLMConfig
from rlm_toolkit.runtime import RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm

LIMIT = 1.0
BACKOFF = 0.2


def _chat_spans(otel: Otel, wait: float) -> list[ReadableSpan]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        chats = [s for s in otel.finished() if s.name.startswith("chat ")]
        if chats:
            return chats
        time.sleep(0.05)
    return []


def test_a_sync_call_abandoned_at_the_deadline_ends_within_the_documented_bound(
    server: OpenAIServer, otel: Otel
) -> None:
    server.queue_fault("slow", delay=5, times=1)  # the first attempt hangs; its retry answers
    policy = RetryPolicy(max_retries=1, initial_delay=BACKOFF, jitter=0)
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=LIMIT), retry=policy)
    started = time.monotonic()
    result = rlm.run("q", context="ctx")
    returned = time.monotonic() - started
    assert result.status == "timeout"
    assert returned < LIMIT + 1.0
    assert result.usage.total_tokens == 0 and not result.by_model  # the call is not counted
    # The call went on: its first attempt timed out at the time left, the client retried it.
    (chat,) = _chat_spans(otel, wait=(policy.max_retries + 1) * LIMIT + BACKOFF + 5)
    assert chat.end_time is not None and chat.start_time is not None
    lasted = (chat.end_time - chat.start_time) / 1e9
    assert LIMIT * 0.9 <= lasted <= (policy.max_retries + 1) * LIMIT + BACKOFF + 1.0
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.usage.input_tokens"] > 0  # billed, and on its own span only
    assert len(server.requests) == 2


def test_an_async_call_is_cancelled_at_the_deadline(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("slow", delay=5, times=1)
    policy = RetryPolicy(max_retries=1, initial_delay=BACKOFF, jitter=0)
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=LIMIT), retry=policy)
    result = asyncio.run(rlm.arun("q", context="ctx"))
    assert result.status == "timeout"
    time.sleep((policy.max_retries + 1) * LIMIT + BACKOFF)
    assert len(server.requests) == 1  # no retry after the cancel
    chats = [s for s in otel.finished() if s.name.startswith("chat ")]
    assert all("gen_ai.usage.input_tokens" not in (s.attributes or {}) for s in chats)


def test_the_stop_reason_says_the_abandoned_call_is_not_counted(server: OpenAIServer, otel: Otel) -> None:
    server.queue_fault("slow", delay=3, times=1)
    rlm = make_rlm(server, otel, config=RLMConfig(max_seconds=LIMIT), max_retries=0)
    rlm.run("q", context="ctx")
    (run,) = [s for s in otel.finished() if s.name == "invoke_agent rlm"]
    reason = str((run.attributes or {})["rlm.run.stop_reason"])
    assert "goes on in the background until its request timeout and is not counted" in reason
