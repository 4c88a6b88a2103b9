"""The tutorial's callback classes (tutorial-13-callbacks), verbatim, on real calls.

Fed through ``instrument(callbacks=...)`` so these tests depend only on the callbacks and the
instrumentation; the RLM path is covered in test_end_to_end.py and tests/runtime.
"""
# ruff: noqa: SIM115

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime

import openai
import pytest
from rich.live import Live
from rich.markdown import Markdown

from rlm_toolkit.callbacks import BaseCallback, StreamingCallback
from rlm_toolkit.testing import OpenAIServer

from .conftest import Stack
from .conftest import chat as _chat


class MetricsCollector(BaseCallback):
    def __init__(self):
        self.calls = 0
        self.tokens = 0
        self.errors = 0
        self.latencies = []
        self.start_time = None
        self.by_model = defaultdict(int)

    def on_llm_start(self, prompt, **kwargs):
        self.start_time = time.time()
        self.calls += 1

    def on_llm_end(self, response, **kwargs):
        latency = time.time() - self.start_time
        self.latencies.append(latency)
        self.tokens += response.usage.total_tokens
        self.by_model[kwargs.get("model", "unknown")] += 1

    def on_error(self, error, **kwargs):
        self.errors += 1

    def summary(self):
        avg_latency = sum(self.latencies) / len(self.latencies) if self.latencies else 0
        return {
            "total_calls": self.calls,
            "total_tokens": self.tokens,
            "errors": self.errors,
            "avg_latency_ms": avg_latency * 1000,
            "by_model": dict(self.by_model),
        }


class RichStreamCallback(StreamingCallback):
    def __init__(self):
        self.buffer = ""
        self.live = None

    def on_llm_start(self, **kwargs):
        self.buffer = ""
        self.live = Live(Markdown(""), refresh_per_second=10)
        self.live.start()

    def on_token(self, token):
        self.buffer += token
        self.live.update(Markdown(self.buffer))

    def on_llm_end(self, **kwargs):
        self.live.stop()


class RetryHandler(BaseCallback):
    def __init__(self, max_retries=3, backoff=2.0):
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry_count = 0

    def on_retry(self, attempt, max_attempts, error, **kwargs):
        wait_time = self.backoff**attempt
        print(f"⚠️ Retry {attempt}/{max_attempts} in {wait_time}s: {error}")
        time.sleep(wait_time)
        self.retry_count += 1

    def on_error(self, error, **kwargs):
        print(f"❌ Final error after {self.retry_count} retries: {error}")


class JSONLLogger(BaseCallback):
    def __init__(self, path="rlm_logs.jsonl"):
        self.path = path
        self.file = open(path, "a")

    def _log(self, event_type, data):
        entry = {"timestamp": datetime.now().isoformat(), "event": event_type, **data}
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def on_llm_start(self, prompt, **kwargs):
        self._log("llm_start", {"prompt": prompt[:200]})

    def on_llm_end(self, response, **kwargs):
        self._log("llm_end", {"tokens": response.usage.total_tokens, "response": response.content[:200]})

    def on_tool_start(self, tool_name, tool_input, **kwargs):
        self._log("tool_start", {"tool": tool_name, "input": str(tool_input)[:100]})

    def on_error(self, error, **kwargs):
        self._log("error", {"error": str(error)})

    def close(self):
        self.file.close()


def test_part_2_metrics_collector(stack: Stack, client: openai.OpenAI, server: OpenAIServer) -> None:
    metrics = MetricsCollector()
    stack.instrument(callbacks=[metrics])
    server.queue_fault("bad_request")
    with pytest.raises(openai.BadRequestError):
        _chat(client, "Question -1")
    for i in range(3):
        _chat(client, f"Question {i}")
    summary = metrics.summary()
    assert (summary["total_calls"], summary["errors"], summary["by_model"]) == (4, 1, {"gpt-4o": 3})
    assert summary["total_tokens"] > 0 and summary["avg_latency_ms"] > 0


def test_part_3_rich_stream_callback(stack: Stack, client: openai.OpenAI, server: OpenAIServer) -> None:
    ui = RichStreamCallback()
    stack.instrument(callbacks=[ui])
    server.queue_reply("# Haiku\nlines of code")
    for _ in _chat(client, "Write a haiku about coding", stream=True):
        pass
    assert ui.buffer == "# Haiku\nlines of code"
    assert ui.live is not None and not ui.live.is_started


def test_part_4_retry_handler(
    stack: Stack, client: openai.OpenAI, server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = RetryHandler(backoff=0.01)
    stack.instrument(callbacks=[handler])
    server.queue_fault("rate_limit", times=3, retry_after=0.01)
    with pytest.raises(openai.RateLimitError):
        _chat(client)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in out[:2]] == ["⚠️ Retry 1/2", "⚠️ Retry 2/2"]
    assert out[2].startswith("❌ Final error after 2 retries: Error code: 429")
    assert handler.retry_count == 2


def test_part_5_jsonl_logger(stack: Stack, client: openai.OpenAI, server: OpenAIServer, tmp_path) -> None:
    path = tmp_path / "session.jsonl"
    logger = JSONLLogger(str(path))
    stack.instrument(callbacks=[logger])
    server.queue_reply("logged answer")
    _chat(client, "log me")
    logger.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["event"], e.get("prompt"), e.get("response")) for e in lines] == [
        ("llm_start", "log me", None),
        ("llm_end", None, "logged answer"),
    ]
    assert lines[1]["tokens"] > 0


def test_part_5_jsonl_logger_logs_the_tool_steps_of_a_recursive_run(server: OpenAIServer, tmp_path) -> None:
    """Part 5's ``on_tool_start`` means something once the runtime runs tools: a recursive run
    logs one ``tool_start`` line per code execution, between the model calls."""
    from rlm_toolkit import RLM
    from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor
    from rlm_toolkit.testing import make_haystack

    path = tmp_path / "session.jsonl"
    logger = JSONLLogger(str(path))
    was_instrumented = OpenAIInstrumentor().is_instrumented_by_opentelemetry
    try:
        rlm = RLM.from_openai("gpt-4o", callbacks=[logger], api_key="sk-tutorial", base_url=server.base_url)
        result = rlm.run("What is the secret launch code?", context=make_haystack(200_000))
    finally:
        logger.close()
        if not was_instrumented and OpenAIInstrumentor().is_instrumented_by_opentelemetry:
            OpenAIInstrumentor().uninstrument()  # RLM instrumented openai; leave it as found
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    tools = [e for e in lines if e["event"] == "tool_start"]
    assert [e["tool"] for e in tools] == ["repl"] * 5
    assert tools[0]["input"].startswith("import json")
    assert [e["event"] for e in lines[:4]] == ["llm_start", "llm_end", "tool_start", "llm_start"]
    assert result.answer == "The secret launch code is 7319-ALPHA."
