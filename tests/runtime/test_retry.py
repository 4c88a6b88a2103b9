"""RetryPolicy: validation, backoff, and retries through the SDK's loop reaching callbacks."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from rlm_toolkit.runtime import RLM, RetryPolicy
from rlm_toolkit.testing import OpenAIServer

from .helpers import API_KEY, Recorder


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "RetryPolicy.max_retries must be >= 0, got -1"),
        ({"initial_delay": -0.5}, "RetryPolicy.initial_delay must be a finite number >= 0, got -0.5"),
        ({"max_delay": float("inf")}, "RetryPolicy.max_delay must be a finite number >= 0, got inf"),
        ({"jitter": 1.5}, "RetryPolicy.jitter must be between 0 and 1, got 1.5"),
    ],
)
def test_policy_rejects_nonsense_with_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        RetryPolicy(**kwargs)
    assert str(info.value) == message


def test_policy_max_retries_must_be_an_int() -> None:
    with pytest.raises(TypeError, match=r"RetryPolicy.max_retries must be an int, got 1.5"):
        RetryPolicy(max_retries=1.5)  # type: ignore[arg-type]


def test_policy_backoff_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=61.0) == 0.5  # beyond the SDK's ceiling: back off instead
    assert RetryPolicy(jitter=0.0, respect_retry_after=False).delay(0, retry_after=7.0) == 0.5
    jittered = RetryPolicy(initial_delay=1.0, jitter=0.25)
    assert all(0.75 <= jittered.delay(0) <= 1.0 for _ in range(200))


def test_defaults_equal_the_sdk_defaults() -> None:
    from openai._constants import DEFAULT_MAX_RETRIES, INITIAL_RETRY_DELAY, MAX_RETRY_DELAY

    policy = RetryPolicy()
    assert (policy.max_retries, policy.initial_delay, policy.max_delay) == (
        DEFAULT_MAX_RETRIES,
        INITIAL_RETRY_DELAY,
        MAX_RETRY_DELAY,
    )


def test_client_uses_the_policy_and_keeps_it_across_with_options() -> None:
    policy = RetryPolicy(max_retries=4, initial_delay=0.1)
    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url="http://127.0.0.1:9/v1", retry=policy)
    client = rlm.client
    assert isinstance(client, openai.OpenAI)
    assert client.max_retries == 4
    assert client.with_options(timeout=3)._rlm_retry_policy is policy
    assert client.copy()._rlm_retry_policy is policy
    assert isinstance(rlm.async_client, openai.AsyncOpenAI)
    assert rlm.async_client.max_retries == 4


def test_max_retries_option_without_policy_sets_the_policy() -> None:
    rlm = RLM.from_openai("gpt-4o", api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert rlm.client.max_retries == 0
    assert rlm.client._rlm_retry_policy == RetryPolicy(max_retries=0)
    with pytest.raises(ValueError, match=r"got max_retries=1 and retry.max_retries=2; pass one"):
        RLM.from_openai("gpt-4o", max_retries=1, retry=RetryPolicy())


def test_retries_reach_on_retry_then_the_run_succeeds(server: OpenAIServer) -> None:
    recorder = Recorder()
    server.queue_fault("rate_limit", times=2, retry_after=0.01)
    rlm = RLM.from_openai(
        "gpt-4o",
        callbacks=[recorder],
        api_key=API_KEY,
        base_url=server.base_url,
        retry=RetryPolicy(max_retries=3),
    )
    result = rlm.run("Hello!")
    assert result.answer != "" and result.error is None
    assert [r.fault for r in server.requests] == ["rate_limit", "rate_limit", None]
    assert recorder.names() == [
        "on_run_start",
        "on_llm_start",
        "on_retry",
        "on_retry",
        "on_llm_end",
        "on_run_end",
    ]
    retries = recorder.of("on_retry")
    assert [(r["attempt"], r["max_attempts"]) for r in retries] == [(1, 3), (2, 3)]
    assert all(isinstance(r["error"], openai.RateLimitError) for r in retries)
    assert [r["delay_s"] for r in retries] == [0.01, 0.01]  # the server's Retry-After, honoured
    llm_start = recorder.of("on_llm_start")[0]
    assert {r["run_id"] for r in retries} == {llm_start["run_id"]}  # one logical LLM span
    assert recorder.of("on_llm_end")[0]["attempts"] == 3


def test_policy_backoff_replaces_the_sdk_backoff(server: OpenAIServer) -> None:
    recorder = Recorder()
    # Retry-After 30 s would be honoured by the SDK; this policy ignores it and waits 0.05 s.
    server.queue_fault("rate_limit", retry_after=30)
    policy = RetryPolicy(
        max_retries=1, initial_delay=0.05, max_delay=0.05, jitter=0.0, respect_retry_after=False
    )
    rlm = RLM.from_openai(
        "gpt-4o", callbacks=[recorder], api_key=API_KEY, base_url=server.base_url, retry=policy
    )
    started = time.monotonic()
    rlm.run("Hello!")
    assert time.monotonic() - started < 10
    assert [r["delay_s"] for r in recorder.of("on_retry")] == [0.05]


def test_final_failure_reaches_on_error_then_is_reraised(server: OpenAIServer) -> None:
    recorder = Recorder()
    server.queue_fault("rate_limit", times=2, retry_after=0.01)
    rlm = RLM.from_openai(
        "gpt-4o",
        callbacks=[recorder],
        api_key=API_KEY,
        base_url=server.base_url,
        retry=RetryPolicy(max_retries=1),
    )
    with pytest.raises(openai.RateLimitError) as info:
        rlm.run("Hello!")
    assert len(server.requests) == 2
    names = recorder.names()
    assert names[:4] == ["on_run_start", "on_llm_start", "on_retry", "on_error"]
    llm_error = recorder.of("on_error")[0]
    assert llm_error["error"] is info.value
    assert llm_error["operation"] == "chat"
    assert recorder.of("on_retry")[0]["attempt"] == 1


def test_raise_on_error_false_returns_the_error(server: OpenAIServer) -> None:
    server.queue_fault("server_error", times=3)
    rlm = RLM.from_openai(
        "gpt-4o", api_key=API_KEY, base_url=server.base_url, retry=RetryPolicy(max_retries=0, initial_delay=0)
    )
    result = rlm.run("Hello!", raise_on_error=False)
    assert isinstance(result.error, openai.InternalServerError)
    assert (result.answer, result.iterations, result.model, result.cost) == ("", 0, "gpt-4o", None)
    assert (result.usage.known, result.usage.total_tokens) == (False, 0)  # nothing was reported
    assert len(server.requests) == 1


class _FakeSDKClient:
    """Just the SDK surface the policy subclass relies on."""

    max_retries = 3

    def _calculate_retry_timeout(
        self, remaining_retries: int, options: Any, response_headers: Any = None
    ) -> float:
        return 99.0  # the "SDK backoff": never used when the policy applies

    def _parse_retry_after_header(self, headers: Any) -> float | None:
        return None if headers is None else float(headers["retry-after"])

    def copy(self) -> _FakeSDKClient:
        return type(self)()


class _Options:
    def get_max_retries(self, default: int) -> int:
        return default


def test_policy_subclass_without_instrumentation_applies_the_policy() -> None:
    from rlm_toolkit.instrumentation.openai import _runtime as _retry

    cls = _retry.policy_class(_FakeSDKClient)
    assert _retry.policy_class(_FakeSDKClient) is cls  # one class per SDK class
    client = cls()
    client._rlm_retry_policy = RetryPolicy(initial_delay=1.0, max_delay=3.0, jitter=0.0)
    assert [client._calculate_retry_timeout(r, _Options()) for r in (3, 2, 1)] == [1.0, 2.0, 3.0]
    assert client._calculate_retry_timeout(3, _Options(), {"retry-after": "5"}) == 5.0
    assert client.with_options()._rlm_retry_policy is client._rlm_retry_policy


def test_an_sdk_without_the_hook_keeps_its_own_backoff(caplog: pytest.LogCaptureFixture) -> None:
    from rlm_toolkit.instrumentation.openai import _runtime as _retry

    class NoHook:
        pass

    with caplog.at_level("DEBUG", logger="rlm_toolkit"):
        assert _retry.policy_class(NoHook) is NoHook
    assert "has no _calculate_retry_timeout; using its backoff" in caplog.text
