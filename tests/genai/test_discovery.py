"""Processor discovery (issue #17 item 6): the private SDK attributes the handler reads to find
callback processors are checked once when instrumenting, with one clear warning if missing.

The first test fails as soon as an installed opentelemetry-sdk stops keeping processors where
the handler reads them -- before users' callbacks silently lose their content.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from rlm_toolkit.genai import check_processor_discovery, discovery_problems


def test_the_installed_sdk_lists_processors_where_the_handler_reads_them() -> None:
    assert discovery_problems() == []
    assert check_processor_discovery() == ()


class _Elsewhere:
    """A provider that keeps its processors somewhere else (a renamed private attribute)."""

    def __init__(self) -> None:
        self._processors: list[Any] = []

    def add_span_processor(self, processor: Any) -> None:
        self._processors.append(processor)

    def add_log_record_processor(self, processor: Any) -> None:
        self._processors.append(processor)


def test_a_renamed_attribute_is_named_in_the_problems() -> None:
    problems = discovery_problems(tracer_provider=_Elsewhere(), logger_provider=LoggerProvider())
    assert problems == ["_Elsewhere._active_span_processor is missing"]
    problems = discovery_problems(tracer_provider=TracerProvider(), logger_provider=_Elsewhere())
    assert problems == ["_Elsewhere._multi_log_record_processor is missing"]


def test_one_warning_when_discovery_cannot_work(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        "rlm_toolkit.genai._discovery.discovery_problems",
        lambda: ["TracerProvider._active_span_processor is missing"],
    )
    check_processor_discovery.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="rlm_toolkit"):
            assert check_processor_discovery() == ("TracerProvider._active_span_processor is missing",)
            check_processor_discovery()  # checked once: no second warning
    finally:
        check_processor_discovery.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "TracerProvider._active_span_processor is missing" in warnings[0]
    assert "callbacks will get no prompt/completion content" in warnings[0]
