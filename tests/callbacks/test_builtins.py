"""ConsoleCallback, MetricsCallback, FileLogCallback (StreamingCallback: see test_dispatch)."""

from __future__ import annotations

import io
import json
import pathlib
import threading
from typing import Any

import pytest
from rich.console import Console

from rlm_toolkit.callbacks import ConsoleCallback, FileLogCallback, LLMResponse, MetricsCallback, Usage
from rlm_toolkit.genai import Payload, payload_during, use_scope

from .conftest import Otel, chat_call


def call(cb: Any, name: str, kwargs: dict[str, Any]) -> None:
    """What the processors do for a built-in (every method takes ``**kwargs``): call it with
    the event's keywords."""
    getattr(cb, name)(**kwargs)


RESPONSE = LLMResponse(
    content="Hi there",
    usage=Usage(prompt_tokens=12, completion_tokens=33, total_tokens=45),
    model="gpt-4o-2024-08-06",
    finish_reason="stop",
    cost=0.00036,
)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=False), out


# -- ConsoleCallback ------------------------------------------------------------------------


def test_console_one_line_per_call_with_cost(otel: Otel) -> None:
    console, out = _console()
    cb = ConsoleCallback(show_cost=True, console=console)
    with use_scope(otel.scope(cb)):
        chat_call(otel.tracer)
        chat_call(otel.tracer, error=RuntimeError("server exploded"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("✓ chat gpt-4o · 45 tokens (12 in, 33 out) · ")
    assert lines[0].endswith(" ms · $0.000360")
    assert lines[1].startswith("✗ chat gpt-4o · RuntimeError: server exploded · ")


def test_console_retry_tokens_and_verbose() -> None:
    console, out = _console()
    cb = ConsoleCallback(verbose=True, show_tokens=True, console=console)
    call(cb, "on_run_start", {"prompt": "Hello!"})
    call(cb, "on_llm_start", {"prompt": "Hello [bold]world[/]!", "model": "gpt-4o", "operation": "chat"})
    call(cb, "on_retry", {"attempt": 1, "max_attempts": 2, "error": RuntimeError("429"), "delay_s": 0.5})
    for token in ("Hi", " there"):
        call(cb, "on_token", {"token": token})
    call(
        cb, "on_llm_end", {"response": RESPONSE, "model": "gpt-4o", "operation": "chat", "duration_ms": 523.4}
    )
    call(cb, "on_tool_start", {"tool_name": "repl", "tool_input": "x"})
    call(cb, "on_tool_end", {"tool_name": "repl", "tool_output": "y", "duration_ms": 2.0})
    call(cb, "on_run_end", {"result": "done", "duration_ms": 600.0})
    assert out.getvalue().splitlines() == [
        "▶ run prompt 6 chars",
        "→ chat gpt-4o · prompt 21 chars: Hello [bold]world[/]!",
        "↻ retry 1/2 in 0.50 s: RuntimeError: 429",
        "Hi there",
        "✓ chat gpt-4o · 45 tokens (12 in, 33 out) · 523 ms · finish=stop",
        "→ tool repl",
        "✓ tool repl · 2 ms",
        "■ run done · 600 ms",
    ]


def test_console_quiet_by_default_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    cb = ConsoleCallback()
    call(cb, "on_llm_start", {"prompt": "p"})
    call(cb, "on_token", {"token": "t"})
    call(cb, "on_llm_end", {"response": RESPONSE, "duration_ms": 1.0})
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().startswith("✓ llm gpt-4o-2024-08-06 · 45 tokens")


# -- MetricsCallback ------------------------------------------------------------------------


def test_metrics_aggregate_whole_dict() -> None:
    m = MetricsCallback()
    for i, model in enumerate(["gpt-4o", "gpt-4o", "gpt-4o-mini"]):
        call(
            m,
            "on_llm_end",
            {"response": RESPONSE, "model": model, "operation": "chat", "duration_ms": 100.0 * (i + 1)},
        )
    call(
        m, "on_error", {"error": RuntimeError(), "model": "gpt-4o", "operation": "chat", "duration_ms": 400.0}
    )
    call(m, "on_error", {"error": RuntimeError(), "operation": "execute_tool", "duration_ms": 9999.0})
    call(m, "on_retry", {"attempt": 1, "max_attempts": 2, "error": None})
    assert m.get_metrics() == {
        "total_calls": 4,
        "total_tokens": 135,
        "calls_without_usage": 0,
        "errors": 2,
        "retries": 1,
        "avg_latency_ms": 250.0,
        "p50_latency_ms": 200.0,
        "p95_latency_ms": 400.0,
        "by_model": {"gpt-4o": {"calls": 3, "tokens": 90}, "gpt-4o-mini": {"calls": 1, "tokens": 45}},
        "total_cost": pytest.approx(3 * 0.00036),
    }
    m.reset()
    assert m.get_metrics()["total_calls"] == 0


def test_metrics_empty_subclass_without_super_and_threads() -> None:
    class Mine(MetricsCallback):
        def __init__(self) -> None:
            pass

    m = Mine()
    assert m.get_metrics() == {
        "total_calls": 0,
        "total_tokens": 0,
        "calls_without_usage": 0,
        "errors": 0,
        "retries": 0,
        "avg_latency_ms": 0.0,
        "p50_latency_ms": 0.0,
        "p95_latency_ms": 0.0,
        "by_model": {},
        "total_cost": 0.0,
    }

    def work() -> None:
        for _ in range(500):
            call(m, "on_llm_end", {"response": RESPONSE, "model": "m", "duration_ms": 1.0})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = m.get_metrics()
    assert (got["total_calls"], got["total_tokens"], got["by_model"]) == (
        2000,
        90_000,
        {"m": {"calls": 2000, "tokens": 90_000}},
    )


def test_metrics_percentiles_use_a_bounded_window() -> None:
    m = MetricsCallback(max_latency_samples=10)
    for i in range(1, 101):
        call(m, "on_llm_end", {"response": RESPONSE, "duration_ms": float(i)})
    got = m.get_metrics()
    assert (got["avg_latency_ms"], got["p50_latency_ms"], got["p95_latency_ms"]) == (50.5, 95.0, 100.0)


# -- FileLogCallback ------------------------------------------------------------------------


def _lines(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_log_without_content_by_default(otel: Otel, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    with FileLogCallback(path) as cb, use_scope(otel.scope(cb)):
        span = chat_call(otel.tracer, prompt="my secret prompt", answer="my secret answer")
    lines = _lines(path)
    for line in lines:
        assert line.pop("timestamp").endswith("+00:00")
    run_id = f"{span.context.span_id:016x}"
    common = {"run_id": run_id, "parent_run_id": None, "operation": "chat", "model": "gpt-4o"}
    duration = (span.end_time - span.start_time) / 1e6
    assert lines == [
        {"event": "llm_start", **common, "prompt_chars": 16},
        {
            "event": "llm_end",
            **common,
            "response_model": "gpt-4o-2024-08-06",
            "finish_reason": "stop",
            "prompt_tokens": 12,
            "completion_tokens": 33,
            "total_tokens": 45,
            "duration_ms": duration,
            "cost": pytest.approx(0.00036),
            "tool_calls": 0,
        },
    ]
    assert "secret" not in path.read_text()


def test_file_log_with_content_and_every_event(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    cb = FileLogCallback(str(path), include_prompts=True, include_responses=True)
    call(cb, "on_run_start", {"prompt": "Привет!"})
    call(cb, "on_llm_start", {"prompt": "Привет!"})
    call(cb, "on_llm_end", {"response": RESPONSE})
    call(
        cb,
        "on_retry",
        {"attempt": 1, "max_attempts": 2, "error": RuntimeError("x"), "status_code": 429, "delay_s": 0.5},
    )
    call(cb, "on_tool_start", {"tool_name": "repl", "tool_input": {"code": "1+1"}})
    call(cb, "on_tool_end", {"tool_name": "repl", "tool_output": "2"})
    call(cb, "on_error", {"error": ValueError("bad")})
    call(cb, "on_run_end", {"result": "done"})
    cb.close()
    call(cb, "on_run_end", {"result": "after close"})  # dropped, no error
    lines = _lines(path)
    assert [line["event"] for line in lines] == [
        "run_start",
        "llm_start",
        "llm_end",
        "retry",
        "tool_start",
        "tool_end",
        "error",
        "run_end",
    ]
    assert lines[0]["prompt"] == "Привет!" and "Привет!" in path.read_text(encoding="utf-8")
    assert lines[2]["response"] == "Hi there"
    assert (lines[3]["attempt"], lines[3]["status_code"], lines[3]["error_type"]) == (1, 429, "RuntimeError")
    assert (lines[4]["input"], lines[5]["output"]) == ({"code": "1+1"}, "2")
    assert (lines[6]["error_type"], lines[6]["error"]) == ("ValueError", "bad")
    assert lines[7]["result"] == "done"


def test_file_log_never_writes_api_keys(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    cb = FileLogCallback(path, include_prompts=True)
    call(cb, "on_error", {"error": RuntimeError("Incorrect API key provided: sk-proj-abcdef123456789")})
    call(
        cb, "on_llm_start", {"prompt": "header Authorization: Bearer abc.def-ghi123 and api_key='k-12345678'"}
    )
    cb.close()
    text = path.read_text()
    assert "sk-proj" not in text and "abc.def" not in text and "k-12345678" not in text
    assert text.count("[REDACTED]") == 3


def test_file_log_lines_never_interleave_under_threads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    cb = FileLogCallback(path, include_responses=True)
    big = LLMResponse(content="x" * 20_000)

    def work() -> None:
        for _ in range(50):
            call(cb, "on_llm_end", {"response": big})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cb.close()
    lines = _lines(path)
    assert len(lines) == 200
    assert all(line["response"] == "x" * 20_000 for line in lines)


def test_file_log_appends(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"event": "old"}\n')
    with FileLogCallback(path) as cb:
        call(cb, "on_llm_start", {"prompt": "p"})
    assert [line["event"] for line in _lines(path)] == ["old", "llm_start"]


def test_file_log_bad_path_is_a_clear_oserror(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "no" / "such" / "dir" / "log.jsonl"
    with pytest.raises(
        OSError, match=r"FileLogCallback cannot open log file '.*log\.jsonl': No such file or directory"
    ) as info:
        FileLogCallback(bad)
    assert info.value.filename == str(bad)


def test_payload_free_span_still_logs(otel: Otel, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    cb = FileLogCallback(path, include_prompts=True)
    with use_scope(otel.scope(cb)), payload_during(Payload()):
        otel.tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
    cb.close()
    assert [(line["event"], line.get("prompt")) for line in _lines(path)] == [
        ("llm_start", ""),
        ("llm_end", None),
    ]


def test_console_lines_stay_whole_under_threads() -> None:
    console, out = _console()
    cb = ConsoleCallback(show_cost=True, console=console)

    def work() -> None:
        for _ in range(100):
            call(
                cb,
                "on_llm_end",
                {"response": RESPONSE, "model": "gpt-4o", "operation": "chat", "duration_ms": 5.0},
            )
            call(
                cb,
                "on_error",
                {
                    "error": RuntimeError("x" * 300),
                    "model": "gpt-4o",
                    "operation": "chat",
                    "duration_ms": 5.0,
                },
            )

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    ok = "✓ chat gpt-4o · 45 tokens (12 in, 33 out) · 5 ms · $0.000360"
    bad = f"✗ chat gpt-4o · RuntimeError: {'x' * 300} · 5 ms"
    assert sorted(set(lines)) == [ok, bad]
    assert (lines.count(ok), lines.count(bad)) == (400, 400)
