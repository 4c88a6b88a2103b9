"""The server survives hostile input, serves 200 concurrent streams and shuts down cleanly."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from rlm_toolkit.testing import OpenAIServer


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rlm-openai-server")]


def raw_exchange(server: OpenAIServer, payload: bytes, *, half_close: bool = True) -> bytes:
    """Send ``payload`` on a fresh socket and read until the server closes (or 5 s)."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def error_of(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


def assert_healthy(server: OpenAIServer) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        assert client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "ok?"}]
        ).choices


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"\x00\xff\xfe binary junk \r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\n\r\n", 505),
        (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n", 400),
        (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n{}", 413),
        (b'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"model"', 400),
        (b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
    ids=[
        "garbage",
        "binary",
        "bad-version",
        "bad-length",
        "negative-length",
        "huge-length",
        "truncated",
        "bad-chunk",
    ],
)
def test_hostile_requests_get_json_errors(server: OpenAIServer, payload: bytes, status: int) -> None:
    got_status, error = error_of(raw_exchange(server, payload))
    assert got_status == status
    assert set(error) == {"message", "type", "param", "code"}
    assert_healthy(server)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "The request body must be a JSON object."),
        (b'{"model": "m", "messages": "hi"}', "Invalid type for 'messages': expected an array."),
        (b'{"messages": []}', "you must provide a model parameter"),
        (b'{"model": "m", "messages": [], "n": "two"}', "Invalid value for 'n': expected an integer >= 1."),
        (
            b'{"model": "m", "messages": [], "stop": 5}',
            "Invalid value for 'stop': expected a string or an array of strings.",
        ),
        (b"\xff\xfe", "We could not parse the JSON body"),
    ],
)
def test_invalid_bodies_are_400(server: OpenAIServer, body: bytes, message: str) -> None:
    status, error = error_of(raw_exchange(server, post("/v1/chat/completions", body)))
    assert status == 400
    assert str(error["message"]).startswith(message)
    assert error["type"] == "invalid_request_error"


def test_client_vanishing_mid_body_and_mid_stream(server: OpenAIServer) -> None:
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
    server.queue_reply("word " * 2000)
    body = json.dumps({"model": "m", "messages": [], "stream": True}).encode()
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(post("/v1/chat/completions", body))
        assert sock.recv(10).startswith(b"HTTP/1.1")
    assert_healthy(server)


def test_chunked_request_body_is_accepted(server: OpenAIServer) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunky"}]}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    head, _, payload = raw_exchange(server, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload)["choices"][0]["message"]["content"].startswith("You said: chunky.")


def test_keep_alive_reuses_one_connection(server: OpenAIServer) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert json.loads(reader.read(int(headers["content-length"])))["object"] == "chat.completion"
            assert headers["x-request-id"].startswith("req_")
            assert "openai-processing-ms" in headers


def test_200_concurrent_streams_with_threads(server: OpenAIServer) -> None:
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:

        def one(i: int) -> str:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"request {i}"}], stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        with ThreadPoolExecutor(max_workers=200) as pool:
            texts = list(pool.map(one, range(200)))
    assert all(t.startswith(f"You said: request {i}. ") for i, t in enumerate(texts))
    assert len(server.requests) == 200


async def test_200_concurrent_streams_with_asyncio(server: OpenAIServer) -> None:
    server_delay = OpenAIServer(token_delay=0.001)
    with server_delay:
        async with openai.AsyncOpenAI(base_url=server_delay.base_url, api_key="k", max_retries=0) as client:

            async def one(i: int) -> str:
                stream = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"request {i}"}], stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            texts = await asyncio.gather(*(one(i) for i in range(200)))
    assert all(t.startswith(f"You said: request {i}. ") for i, t in enumerate(texts))


def test_stop_closes_idle_keep_alive_connections_and_threads() -> None:
    srv = OpenAIServer().start()
    client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert len(server_threads()) == 2  # acceptor + one idle keep-alive connection
    srv.stop()
    srv.stop()  # idempotent
    assert server_threads() == []
    assert not srv.running
    client.close()


def test_stop_interrupts_slow_and_delayed_streams() -> None:
    srv = OpenAIServer(token_delay=10.0).start()
    srv.queue_fault("slow", delay=30.0)
    errors: list[BaseException] = []

    def call(stream: bool) -> None:
        with openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0) as client:
            try:
                result = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], stream=stream
                )
                if stream:
                    list(result)  # type: ignore[call-overload]
            except openai.APIError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in (False, True)]
    for count, thread in enumerate(threads, 1):
        thread.start()  # one at a time, so the slow fault goes to the non-streaming call
        while len(srv.requests) < count:
            threading.Event().wait(0.01)
    assert [r.fault for r in srv.requests] == ["slow", None]
    srv.stop()
    for t in threads:
        t.join(5)
    assert server_threads() == []
    assert len(errors) == 2


def test_ports_and_urls() -> None:
    with OpenAIServer() as srv:
        assert srv.port > 0
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        assert srv.base_url == srv.url + "/v1"
        assert repr(srv) == f"OpenAIServer('{srv.base_url}', running)"
        with pytest.raises(OSError), OpenAIServer(port=srv.port):
            pass
    with pytest.raises(ValueError, match="token_delay"):
        OpenAIServer(token_delay=-1)
    for delay in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"token_delay must be a finite number >= 0, got (inf|nan)"):
            OpenAIServer(token_delay=delay)
    for port in (-1, 65536, 99999, True, "8000"):
        with pytest.raises(ValueError, match=r"port must be an int in 0-65535, got "):
            OpenAIServer(port=port)  # type: ignore[arg-type]


def test_an_internal_bug_is_a_500_and_the_server_goes_on(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rlm_toolkit.testing import _http

    def broken(call: object) -> object:
        raise RuntimeError("bug in an endpoint")

    monkeypatch.setitem(_http._ROUTES, ("POST", "embeddings"), broken)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as info:
            client.embeddings.create(model="text-embedding-3-small", input="x")
        assert info.value.status_code == 500 and info.value.type == "server_error"
        assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).choices
    assert any(r.exc_info and "bug in an endpoint" in str(r.exc_info[1]) for r in caplog.records)


def test_answers_are_not_held_back_by_nagle(server: OpenAIServer) -> None:
    """Headers and body are two small writes; without TCP_NODELAY each answer waits ~40 ms."""
    import statistics
    import time

    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        timings = []
        for _ in range(15):
            started = time.perf_counter()
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.02
