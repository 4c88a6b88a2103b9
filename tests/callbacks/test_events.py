"""Typed callback events: each names its BaseCallback method and carries exactly its keywords."""

from __future__ import annotations

from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.callbacks import _events as ev
from rlm_toolkit.callbacks._base import EVENT_METHODS
from rlm_toolkit.callbacks._span_processor import deliver

from .conftest import Recorder

COMMON = {
    "operation": "chat",
    "model": "gpt-4o",
    "run_id": "00000000000000a1",
    "parent_run_id": None,
    "span": None,
    "start_time": 1.0,
}


def test_every_event_is_delivered_to_a_base_callback_method() -> None:
    kinds = [ev.LLMStart, ev.LLMEnd, ev.ToolStart, ev.ToolEnd, ev.RunStart, ev.RunEnd, ev.Failed]
    kinds += [ev.Token, ev.Retry]
    assert sorted(kind.method for kind in kinds) == sorted(EVENT_METHODS)
    for kind in kinds:
        assert callable(getattr(BaseCallback, kind.method))


def test_absent_fields_are_not_passed() -> None:
    error = ValueError("bad")
    failed = ev.Failed(**COMMON, end_time=2.0, duration_ms=1000.0, error=error, error_type="ValueError")
    assert "tool_name" not in failed.keywords()
    on_tool = ev.Failed(**{**COMMON, "operation": "execute_tool"}, error=error, tool_name="python")
    assert on_tool.keywords()["tool_name"] == "python"
    ok = ev.RunEnd(**COMMON, result="done")
    assert set(ok.keywords()) == {*COMMON, "end_time", "duration_ms", "result", "error"}
    run_failed = failed.run_ended()
    assert run_failed.method == "on_run_end"
    assert run_failed.keywords() == {
        **COMMON,
        "end_time": 2.0,
        "duration_ms": 1000.0,
        "result": None,
        "error": error,
        "error_type": "ValueError",
        "attempts": None,
    }


def test_deliver_builds_the_keywords_once_for_every_callback() -> None:
    a, b = Recorder(), Recorder()
    deliver((a, b), ev.Token(**COMMON, timestamp=1.5, token="Hi", index=0))
    assert a.events == b.events == [("on_token", {**COMMON, "timestamp": 1.5, "token": "Hi", "index": 0})]
