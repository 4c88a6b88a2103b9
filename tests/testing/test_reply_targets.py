"""Scripted replies addressed to root calls, to sub-calls, or chosen by a rule on the request."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

from rlm_toolkit import RLM
from rlm_toolkit.testing import OpenAIServer


def _rlm(server: OpenAIServer) -> RLM:
    return RLM.from_openai(
        "gpt-4o-mini", api_key="sk-test-secret", base_url=server.base_url, tracer_provider=TracerProvider()
    )


def test_root_and_subcall_replies_do_not_eat_each_other(server: OpenAIServer) -> None:
    # Before: the llm_query took the next scripted reply ("FINAL(done)"), and the built-in
    # model silently played the rest of the run.
    server.queue_reply('```repl\nprint("sub said:", llm_query("x"))\n```', to="root")
    server.queue_reply("FINAL(done)", to="root")
    server.queue_reply("the sub answer", to="subcall")
    result = _rlm(server).run("q", context="ctx")
    assert (result.status, result.answer) == ("final", "done")
    assert "sub said: the sub answer" in str(result.transcript[3]["content"])
    assert server.pending == (0, 0)


def test_a_reply_waits_for_the_request_it_is_for(client: openai.OpenAI, server: OpenAIServer) -> None:
    server.queue_reply("for root", to="root")
    server.queue_reply("plain")
    hello = [{"role": "user", "content": "hello"}]
    first = client.chat.completions.create(model="m", messages=hello)  # type: ignore[arg-type]
    assert first.choices[0].message.content == "plain"
    assert server.pending == (1, 0)


def test_a_rule_on_the_request_chooses_the_reply(client: openai.OpenAI, server: OpenAIServer) -> None:
    def about(word: str) -> Any:
        return lambda body: word in json.dumps(body["messages"])

    server.queue_reply("A", when=about("alpha"))
    server.queue_reply("B", when=about("beta"))
    server.queue_reply("never", when=lambda body: body["no such key"])  # raises: never fits

    def ask(text: str) -> str | None:
        msgs: Any = [{"role": "user", "content": text}]
        return client.chat.completions.create(model="m", messages=msgs).choices[0].message.content

    assert ask("beta please") == "B"
    assert ask("alpha please") == "A"
    assert ask("gamma") != "never"  # the demo model answered
    assert server.pending == (1, 0)


def test_replies_addressed_over_http(server: OpenAIServer, client: openai.OpenAI) -> None:
    data = json.dumps({"text": "root only", "to": "root"}).encode()
    request = urllib.request.Request(f"{server.url}/_rlm/replies", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"replies": 1, "faults": 0}
    hello: Any = [{"role": "user", "content": "hello"}]
    assert client.chat.completions.create(model="m", messages=hello).choices[0].message.content != "root only"
    system: Any = [{"role": "system", "content": "You are a recursive language model (RLM): go"}, *hello]
    assert (
        client.chat.completions.create(model="m", messages=system).choices[0].message.content == "root only"
    )


def test_bad_targets_are_refused(server: OpenAIServer) -> None:
    with pytest.raises(ValueError, match="to= must be one of"):
        server.queue_reply("x", to="sub")
    with pytest.raises(TypeError, match="when= must be a function"):
        server.queue_reply("x", when="alpha")  # type: ignore[arg-type]
