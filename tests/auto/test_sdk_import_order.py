"""rlm-instrument when the app imports ``rlm_toolkit`` before any LLM SDK (issue #22 item 13),
and for an ``anthropic`` app: a real ``rlm-instrument`` process each time."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

from .helpers import run_with_jsonl

OPENAI_AFTER_RLM_TOOLKIT = """
import sys
import rlm_toolkit
from rlm_toolkit import RLM, instrument  # noqa: F401 - as an app that may call it does, before openai
from rlm_toolkit.testing import OpenAIServer
import openai
with OpenAIServer() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    print(sum(1 for _ in stream))
"""

ANTHROPIC_APP = """
import anthropic
from rlm_toolkit.testing import OpenAIServer
with OpenAIServer() as server:
    client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)
    client.messages.create(model="claude-sonnet-4-5", max_tokens=30, messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=30, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        stream.get_final_message()
"""


def test_cli_settings_hold_when_the_app_imports_rlm_toolkit_first(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(OPENAI_AFTER_RLM_TOOLKIT)
    out = tmp_path / "run.jsonl"
    proc = run_with_jsonl(app, out, cli=("--capture-content", "true", "--stream-usage"))
    assert proc.returncode == 0, proc.stderr
    assert "unavailable" not in proc.stderr and "not traced" not in proc.stderr, proc.stderr
    [span] = [s for s in read_spans_jsonl(out) if s.name == "chat gpt-4o"]
    attributes = dict(span.attributes or {})
    assert "gen_ai.input.messages" in attributes  # --capture-content reached the instrumentation
    assert attributes.get("gen_ai.usage.output_tokens", 0) > 0  # --stream-usage too


def test_anthropic_app_is_traced_with_one_span_per_call(tmp_path: Path) -> None:
    """The SDK's own tracing is on by default under rlm-instrument (a global provider exists):
    still one span per call, ours, with content as the CLI asked."""
    pytest.importorskip("anthropic")
    app = tmp_path / "app.py"
    app.write_text(ANTHROPIC_APP)
    out = tmp_path / "run.jsonl"
    proc = run_with_jsonl(app, out, cli=("--capture-content", "true"))
    assert proc.returncode == 0, proc.stderr
    spans = read_spans_jsonl(out)
    assert [s.name for s in spans] == ["chat claude-sonnet-4-5"] * 2, [s.name for s in spans]
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.provider.name"] == "anthropic"
        assert "gen_ai.output.messages" in attributes
