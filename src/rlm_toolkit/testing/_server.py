"""``OpenAIServer``: the public face of the offline server (lifecycle, scripting, request log)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from rlm_toolkit.testing._http import HTTPServer
from rlm_toolkit.testing._script import (
    DEFAULT_MAX_REQUESTS,
    RecordedRequest,
    Script,
    make_fault,
    make_reply,
)


class OpenAIServer:
    """An OpenAI-compatible HTTP server on loopback, for tests and offline demos.

    The unmodified ``openai`` client (sync or async) talks to it over real HTTP::

        with OpenAIServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
            server.queue_reply("Hello!")
            client.chat.completions.create(model="gpt-4o", messages=[...])

    Endpoints: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/completions``,
    ``/v1/embeddings`` (plain and, where the API has it, SSE streaming) and ``GET /v1/models[/{id}]``;
    and Anthropic's Messages API, ``POST /v1/messages`` (JSON or its typed SSE events) and
    ``/v1/messages/count_tokens``: pass :attr:`url` as ``anthropic.Anthropic(base_url=...)``.
    The ``model`` of a response echoes the request's ``model`` unchanged.

    Without a queued reply, a deterministic demo model answers from the last user message (the
    same prompt always gives the same text and usage, streamed or not).

    Another process (an app under test, a shell) scripts the server over HTTP on the same port:
    ``POST /_rlm/replies`` (``{"text": ..., "tool_calls": [...], "to": "root"}``), ``POST /_rlm/faults``
    (``{"kind": "rate_limit", "times": 1, ...}``: the arguments of :meth:`queue_fault`),
    ``GET /_rlm/requests``, ``GET /_rlm/pending`` and ``POST /_rlm/reset``; JSON in and out,
    400 with a message for bad input. Control requests are not recorded and never faulted.

    Args:
        host: interface to bind; loopback by default.
        port: TCP port; ``0`` picks a free one.
        token_delay: seconds to wait before each streamed token (0 = as fast as possible).
        max_requests: how many requests :attr:`requests` keeps (the most recent; default 1000),
            so a long-running server's memory stays bounded.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token_delay: float = 0.0,
        max_requests: int = DEFAULT_MAX_REQUESTS,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0-65535, got {port!r}")
        if not (math.isfinite(token_delay) and token_delay >= 0):
            raise ValueError(f"token_delay must be a finite number >= 0, got {token_delay!r}")
        if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 0:
            raise ValueError(f"max_requests must be an int >= 0, got {max_requests!r}")
        self._host = host
        self._port = port
        self._token_delay = float(token_delay)
        self._script = Script(max_requests)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        """Bind and serve in a daemon thread; returns ``self``. Starting twice is a no-op."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = HTTPServer((self._host, self._port), self._script, self._token_delay)
            self._port = httpd.server_address[1]
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"rlm-openai-server:{self._port}",
                daemon=True,
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join every server thread. Idempotent."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        if thread is not None:
            thread.join()
        httpd.close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one once started with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash)."""
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: pass it as ``openai.OpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def token_delay(self) -> float:
        return self._token_delay

    # -- scripting -------------------------------------------------------------------------------
    def queue_reply(
        self,
        text: str | None = None,
        *,
        tool_calls: Sequence[Any] | None = None,
        to: str = "any",
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        """Script the next model reply (chat completions, Responses API, legacy completions).

        ``tool_calls`` is a list of ``{"name": ..., "arguments": "<json string>"}`` (an ``"id"``
        is optional; the OpenAI ``{"function": {...}}`` shape is accepted too). Replies are used
        in FIFO order, one per choice (``n`` > 1 takes several); when no queued reply fits a
        request the demo model answers it.

        ``to`` addresses the reply in a recursive run: ``"root"`` answers only a root-model call
        (a request whose system prompt is the RLM's), ``"subcall"`` only the other calls
        (``llm_query`` sub-calls), ``"any"`` (the default) the next request. ``when`` is a rule
        on the request: a function of its JSON body (a dict) that must return True. A reply
        waits in the queue, in order, until a request it fits arrives; a raising rule never fits.
        """
        self._script.push_reply(make_reply(text, tool_calls, to, when))

    def queue_fault(
        self,
        kind: str,
        *,
        times: int = 1,
        retry_after: float | None = None,
        delay: float | None = None,
        after_chunks: int | None = None,
        status: int | None = None,
        path: str | None = None,
    ) -> None:
        """Make the next ``times`` matching request(s) fail in the way ``kind`` names.

        Kinds: ``rate_limit`` (429; ``retry_after`` sets ``retry-after`` and ``retry-after-ms``),
        ``server_error`` (500), ``unavailable`` (503), ``bad_request`` (400), ``unauthorized``
        (401), ``not_found`` (404) — each with the real API's error JSON, ``status`` overrides the
        code; ``slow`` (wait ``delay`` seconds, default 5, then answer normally); ``reset`` (close
        the connection with RST before any byte); and, for streaming requests only (a non-streaming
        request leaves them queued), ``cut_stream`` (drop the connection after ``after_chunks``
        events, default 2, without ``[DONE]``), ``malformed_sse`` (a non-JSON ``data:`` line after
        ``after_chunks`` events, default 1) and ``no_usage`` (no usage chunk even when
        ``stream_options.include_usage`` is set; ``usage: null`` in ``response.completed``) and
        ``stream_error`` (the API's in-band error event after ``after_chunks`` events, default 1,
        then the stream ends).

        On the Messages API (``/v1/messages``) error faults answer Anthropic's envelope
        (``{"type": "error", "error": {...}}``, ``unavailable`` is 529 ``overloaded_error``, and
        ``retry-after`` without ``retry-after-ms``); ``no_usage`` does not apply there.

        Faults are matched in FIFO order; with ``path`` only requests whose URL path ends with it
        match (e.g. ``path="/embeddings"``).
        """
        self._script.push_fault(
            make_fault(
                kind,
                times=times,
                retry_after=retry_after,
                delay=delay,
                after_chunks=after_chunks,
                status=status,
                path=path,
            )
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (a copy; the most recent ``max_requests``), oldest
        first, faulted ones included."""
        return self._script.requests()

    @property
    def pending(self) -> tuple[int, int]:
        """How many (replies, faults) are still queued."""
        return self._script.pending()

    def reset(self) -> None:
        """Clear queued replies, queued faults and the request log."""
        self._script.reset()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"OpenAIServer({self.base_url!r}, {state})"
