"""The offline server's request log is bounded, and the CLI server is scriptable from another
process over HTTP (``/_rlm/...`` on the same port)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from rlm_toolkit.testing import OpenAIServer

HELLO = [{"role": "user", "content": "hello"}]


def control(url: str, method: str, action: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/_rlm/{action}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def cli_server() -> Iterator[str]:
    """``python -m rlm_toolkit.testing`` in its own process; yields its root URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlm_toolkit.testing",
            "--port",
            "0",
            "--token-delay",
            "0",
            "--max-requests",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "(control: http://127.0.0.1:" in line, line
        yield line.split()[4].removesuffix("/v1")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_another_process_queues_replies_and_faults_and_reads_the_bounded_log(cli_server: str) -> None:
    url = cli_server
    assert control(url, "POST", "faults", {"kind": "rate_limit", "retry_after": 0}) == (
        200,
        {"replies": 0, "faults": 1},
    )
    assert control(url, "POST", "replies", {"text": "scripted from afar"}) == (
        200,
        {"replies": 1, "faults": 1},
    )
    with openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
        reply = client.chat.completions.create(model="gpt-4o", messages=HELLO)
        assert reply.choices[0].message.content == "scripted from afar"
        for _ in range(3):
            client.models.list()
    status, log = control(url, "GET", "requests")
    assert status == 200
    # The most recent 3 (--max-requests 3); control requests are not logged; the key is redacted.
    assert [(r["method"], r["path"]) for r in log["data"]] == [("GET", "/v1/models")] * 3
    assert all(r["headers"]["authorization"] == "<redacted>" for r in log["data"])
    assert control(url, "POST", "reset") == (200, {"replies": 0, "faults": 0})
    assert control(url, "GET", "requests") == (200, {"data": []})


@pytest.mark.parametrize(
    ("method", "action", "body", "status", "message"),
    [
        ("POST", "faults", {"kind": "meteor"}, 400, "unknown fault kind 'meteor'"),
        ("POST", "faults", {"kind": "slow", "delay": -1}, 400, "delay must be a number >= 0"),
        ("POST", "faults", {"kind": "slow", "color": "red"}, 400, "a fault needs 'kind' and takes only"),
        ("POST", "replies", {}, 400, "queue_reply needs text, tool_calls, or both"),
        ("POST", "replies", ["x"], 400, "needs a JSON object body"),
        ("GET", "nothing", None, 404, "no control endpoint GET /_rlm/nothing (known: "),
    ],
)
def test_bad_control_requests_get_a_clear_error(
    method: str, action: str, body: Any, status: int, message: str
) -> None:
    with OpenAIServer() as server:
        got_status, answer = control(server.url, method, action, body)
        assert got_status == status
        assert message in answer["error"]["message"]
        assert server.pending == (0, 0)


def test_request_log_keeps_the_most_recent_only() -> None:
    with (
        OpenAIServer(max_requests=2) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        for word in ("one", "two", "three"):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": word}])
        assert [r.body["messages"][0]["content"] for r in server.requests] == ["two", "three"]
    with pytest.raises(ValueError, match="max_requests must be an int >= 0"):
        OpenAIServer(max_requests=-1)
