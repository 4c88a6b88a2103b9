"""``with_streaming_response`` spans carry no usage: the gap is said once on stderr, not hidden."""

from __future__ import annotations

import openai
import pytest

from rlm_toolkit import _notices
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel

HELLO = [{"role": "user", "content": "Hello!"}]


def test_with_streaming_response_says_once_that_usage_is_missing(
    plain_instrumented: Otel, client: openai.OpenAI, server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _notices._said.discard(_notices.RAW_RESPONSE)  # another test may have triggered it already
    for _ in range(2):
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=HELLO
        ) as response:
            assert response.parse().usage is not None  # the app gets its usage ...
    spans = plain_instrumented.spans()
    assert [dict(s.attributes or {}).get("gen_ai.usage.input_tokens") for s in spans] == [
        None,
        None,
    ]  # ... we do not
    assert capsys.readouterr().err == (
        "rlm-toolkit: with_streaming_response calls are traced without response attributes or token usage "
        "(the body is read by your code after the call's span ended); use the plain or stream=True call to get them\n"
    )
