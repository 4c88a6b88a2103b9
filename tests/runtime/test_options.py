"""RLM construction: option validation, lazy clients, environment fallback, no growth."""

from __future__ import annotations

import gc
import tracemalloc

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import rlm_toolkit
from rlm_toolkit.runtime import RLM
from rlm_toolkit.testing import OpenAIServer

from .conftest import Telemetry
from .helpers import API_KEY, Recorder


def test_unknown_option_is_one_line_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(TypeError) as info:
        RLM.from_openai("gpt-4o", api_kye="sk-typo")
    assert str(info.value) == (
        "RLM.from_openai() got an unexpected option 'api_kye'; valid options: "
        "api_key, base_url, default_headers, max_retries, organization, project, retry, timeout"
    )


def test_bad_callbacks_and_model_are_rejected_early() -> None:
    with pytest.raises(TypeError, match=r"not an instance; pass Recorder\(\)"):
        RLM.from_openai("gpt-4o", callbacks=[Recorder])
    with pytest.raises(TypeError, match="RLM\\(\\) needs model=<model name>, got None"):
        RLM(client=object())
    with pytest.raises(TypeError, match="option 'retry' must be a RetryPolicy, got int"):
        RLM.from_openai("gpt-4o", retry=3)


def test_constructor_mix_ups_are_one_line_and_say_what_to_do() -> None:
    with pytest.raises(TypeError) as info:
        RLM("gpt-4o")  # type: ignore[arg-type]
    assert str(info.value) == (
        "RLM(client, model=...) takes an openai client first; for a model name use "
        "RLM.from_openai('gpt-4o') or RLM(model='gpt-4o')"
    )
    with pytest.raises(TypeError) as info:
        RLM(openai.OpenAI, model="gpt-4o")
    assert str(info.value) == "RLM() client must be an instance, got the class OpenAI"
    with pytest.raises(TypeError) as info:
        RLM(model="gpt-4o", tracer_provider=TracerProvider)
    assert str(info.value) == "RLM() tracer_provider must be an instance, got the class TracerProvider"
    with pytest.raises(TypeError) as info:
        RLM(object(), [Recorder()])  # type: ignore[arg-type]
    assert str(info.value) == (
        "RLM(client, model, callbacks): the second argument is the model name; pass callbacks=[...]"
    )
    with pytest.raises(TypeError) as info:
        RLM(model="gpt-4o", strategy="direct")  # type: ignore[arg-type]
    assert str(info.value) == "RLM() strategy must have plan() and messages() methods, got str"


def test_model_only_builds_the_sdks_default_clients(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    rlm = RLM(model="gpt-4o")
    assert rlm.run("Hello!").answer
    assert isinstance(rlm.client, openai.OpenAI) and str(rlm.client.base_url) == server.base_url + "/"
    assert isinstance(rlm.async_client, openai.AsyncOpenAI)
    assert [r.path for r in server.requests] == ["/v1/chat/completions"]


def test_sdk_environment_variables_apply(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    rlm = RLM.from_openai("gpt-4o", timeout=5.0, default_headers={"x-app": "tutorial"}, organization="org-1")
    rlm.run("Hello!")
    (request,) = server.requests
    assert request.headers["x-app"] == "tutorial"
    assert request.headers["openai-organization"] == "org-1"
    assert request.headers["authorization"] == "<redacted>"
    assert rlm.client.timeout == 5.0


def test_missing_key_is_one_clear_error_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rlm = RLM.from_openai("gpt-4o")  # clients are built lazily: construction is cheap
    with pytest.raises(rlm_toolkit.RLMCredentialsError, match=r"^no OpenAI API key: set OPENAI_API_KEY"):
        rlm.run("Hello!")


def test_a_user_client_is_used_as_is(server: OpenAIServer) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
        rlm = RLM(client=client, model="gpt-4o")
        assert rlm.client is client
        assert rlm.run("Hello!").answer != ""
    with pytest.raises(TypeError, match="no async client"):
        RLM(client=object(), model="gpt-4o").async_client  # noqa: B018


def test_ten_thousand_rlms_grow_nothing(telemetry: Telemetry) -> None:
    def build(n: int) -> None:
        for _ in range(n):
            RLM.from_openai(
                "gpt-4o",
                callbacks=[Recorder()],
                api_key=API_KEY,
                base_url="http://127.0.0.1:9/v1",
                tracer_provider=telemetry.tracer_provider,
                logger_provider=telemetry.logger_provider,
            )

    build(100)  # warm caches (pipeline, instrumentor, classes)
    span_processors = telemetry.tracer_provider._active_span_processor._span_processors
    log_processors = telemetry.logger_provider._multi_log_record_processor._log_record_processors
    before = (len(span_processors), len(log_processors))
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        build(10_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert (len(span_processors), len(log_processors)) == before
    assert grown < 64 * 1024, f"10,000 RLMs left {grown} bytes behind"
