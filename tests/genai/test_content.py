"""Content capture policy: env and code values, truncation that keeps JSON valid."""

from __future__ import annotations

import json
import logging

import pytest

from rlm_toolkit.genai import (
    ContentMode,
    resolve_content_mode,
    resolve_max_length,
    to_json,
    truncate_messages,
)

ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ContentMode(False, False)),
        ("true", ContentMode(True, True)),
        ("TRUE", ContentMode(True, True)),
        ("false", ContentMode(False, False)),
        ("span_only", ContentMode(True, False)),
        ("Event_Only", ContentMode(False, True)),
        ("span_and_event", ContentMode(True, True)),
        ("no_content", ContentMode(False, False)),
        ("garbage", ContentMode(False, False)),
    ],
)
def test_env_values(raw: str | None, expected: ContentMode, monkeypatch: pytest.MonkeyPatch) -> None:
    if raw is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, raw)
    assert resolve_content_mode() == expected


def test_unknown_env_value_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV, "sometimes")
    with caplog.at_level(logging.DEBUG, logger="rlm_toolkit"):
        assert not resolve_content_mode().any
    assert "sometimes" in caplog.text


def test_code_values_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "true")
    assert resolve_content_mode(False) == ContentMode(False, False)
    assert resolve_content_mode("span_only") == ContentMode(True, False)
    with pytest.raises(ValueError, match="span_only, event_only"):
        resolve_content_mode("maybe")
    with pytest.raises(ValueError):
        resolve_content_mode(3)  # type: ignore[arg-type]


def test_max_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLM_CAPTURE_MAX_LENGTH", raising=False)
    assert resolve_max_length() == 16384
    monkeypatch.setenv("RLM_CAPTURE_MAX_LENGTH", "10")
    assert resolve_max_length() == 10
    monkeypatch.setenv("RLM_CAPTURE_MAX_LENGTH", "-3")
    assert resolve_max_length() == 16384


def test_truncation_keeps_json_valid_and_input_intact() -> None:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "x" * 50}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": "{" + "a" * 40}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "1", "response": "short"}]},
    ]
    cut = truncate_messages(messages, 10)
    decoded = json.loads(to_json(cut))
    assert decoded == [
        {"role": "user", "parts": [{"type": "text", "content": "x" * 10}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": "{" + "a" * 9}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "1", "response": "short"}]},
    ]
    assert messages[0]["parts"][0]["content"] == "x" * 50  # the payload keeps full text
    assert cut[2] is messages[2]  # untouched messages are not copied
    assert truncate_messages(messages, 100) is messages
