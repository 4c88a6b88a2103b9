"""The HTTP layer: a threading HTTP/1.1 server with keep-alive, chunked SSE and fault injection.

Only the standard library is used. Each connection gets a daemon thread; the server tracks
connections and threads so :meth:`HTTPServer.close` leaves nothing running.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rlm_toolkit.testing import _anthropic_batches, _anthropic_endpoints, _chat, _endpoints, _responses
from rlm_toolkit.testing import _anthropic_wire as anthropic
from rlm_toolkit.testing import _control as control
from rlm_toolkit.testing._script import (
    ERROR_FAULTS,
    Fault,
    RecordedRequest,
    Script,
    redact_headers,
    redact_query,
)
from rlm_toolkit.testing._wire import Answer, ApiError, Call, SseEvent

logger = logging.getLogger("rlm_toolkit.testing")

#: Bodies larger than this are refused with 413 before reading them.
MAX_BODY_BYTES = 32 * 1024 * 1024
_IDLE_TIMEOUT_S = 30.0
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_FAULT_ERRORS: dict[str, tuple[str, str, str | None]] = {
    "bad_request": ("Invalid request (injected fault).", "invalid_request_error", None),
    "unauthorized": (
        "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    "not_found": (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    "rate_limit": (
        "Rate limit reached (injected fault). Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    "server_error": (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    "unavailable": ("The engine is currently overloaded, please try again later.", "server_error", None),
}

Endpoint = Callable[[Call], Answer]
_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "chat/completions"): _chat.create,
    ("POST", "responses"): _responses.create,
    ("POST", "completions"): _endpoints.completions,
    ("POST", "embeddings"): _endpoints.embeddings,
    ("GET", "models"): _endpoints.list_models,
    ("POST", "messages"): _anthropic_endpoints.create,
    ("POST", "messages/count_tokens"): _anthropic_endpoints.count_tokens,
}


class _Abort(Exception):
    """The connection was deliberately dropped (fault) or the client went away."""


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], script: Script, token_delay: float) -> None:
        self.script = script
        self.token_delay = token_delay
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="rlm-openai-server-conn",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("offline OpenAI server: error on a connection from %s", client_address, exc_info=True)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, drop open (keep-alive) connections and join their threads."""
        self.stopping.set()
        self.server_close()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # the client hung up first, or the socket is already closed
                logger.debug("offline OpenAI server: connection already gone while stopping: %s", exc)
        deadline = time.monotonic() + timeout
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rlm-toolkit-offline-openai/1"
    timeout = _IDLE_TIMEOUT_S
    # Headers and body are separate small writes: without TCP_NODELAY, Nagle plus delayed ACK
    # adds ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the query string: secrets in it never reach the log.
        safe = tuple(redact_query(arg) if isinstance(arg, str) else arg for arg in args)
        logger.debug("offline OpenAI server: " + format, *safe)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- request ---------------------------------------------------------------------------
    def _serve(self) -> None:
        self._started = time.monotonic()
        self._request_id = f"req_{uuid.uuid4().hex}"
        self._headers_sent = False
        # Messages API paths answer in Anthropic's dialect (error envelope, headers, events).
        self._anthropic = anthropic.owns(urlsplit(self.path).path.rstrip("/"))
        try:
            self._answer()
        except (_Abort, OSError):
            self.close_connection = True  # dropped on purpose, or the client went away
        except Exception:
            # A bug of ours: answer 500 like the real API would, and keep serving.
            logger.warning(
                "offline OpenAI server: internal error on %s %s",
                self.command,
                redact_query(self.path),
                exc_info=True,
            )
            self.close_connection = True
            if not self._headers_sent:
                error = ApiError(500, "The offline server failed on this request.", type="server_error")
                try:
                    self._send_json(500, self._error_body(error))
                except OSError as exc:  # the client went away before it could hear about our bug
                    logger.debug("offline OpenAI server: client went away before the 500: %s", exc)

    def _answer(self) -> None:
        split = urlsplit(self.path)
        try:
            raw = self._read_body()
        except ApiError as error:
            self.close_connection = True
            self._send_json(error.status, self._error_body(error))
            return
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        if split.path.startswith(control.PREFIX):
            status, answer_body = control.handle(self.server.script, self.command, split.path, body, bad_json)
            self._send_json(status, answer_body)
            return
        streaming = isinstance(body, dict) and body.get("stream") is True
        fault = self.server.script.take_fault(split.path, streaming)
        self.server.script.record(
            RecordedRequest(
                method=self.command,
                path=split.path,
                headers=redact_headers(list(self.headers.items())),
                body=body,
                query=redact_query(split.query),
                fault=fault.kind if fault else None,
            )
        )
        try:
            if fault is not None and self._pre_fault(fault):
                return
            if bad_json:
                raise ApiError(400, _BAD_JSON)
            answer = self._dispatch(split.path, body, fault)
        except ApiError as error:
            self._send_json(error.status, self._error_body(error))
            return
        if answer.events is None:
            self._send_json(answer.status, answer.body)
        else:
            self._send_stream(answer, fault)

    def _read_body(self) -> bytes:
        length_header = self.headers.get("content-length")
        if length_header is None:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                return self._read_chunked()
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header.") from None
        if length < 0:
            raise ApiError(400, "Invalid Content-Length header.")
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"Request body too large: {length} bytes (limit {MAX_BODY_BYTES}).")
        data = self.rfile.read(length)
        if len(data) < length:
            raise ApiError(400, "Incomplete request body.")
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ApiError(400, "Malformed chunked request body.") from None
            total += size
            if size < 0 or total > MAX_BODY_BYTES:
                raise ApiError(413, "Request body too large.")
            if size == 0:
                # Skip any trailer fields up to the blank line that ends the chunked body.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    continue
                return b"".join(parts)
            chunk = self.rfile.read(size + 2)
            if len(chunk) < size + 2:
                raise ApiError(400, "Incomplete request body.")
            parts.append(chunk[:size])

    def _dispatch(self, path: str, body: Any, fault: Fault | None) -> Answer:
        route = path.rstrip("/")
        route = route[len("/v1/") :] if route.startswith("/v1/") else route.lstrip("/")
        endpoint = _ROUTES.get((self.command, route))
        param = ""
        if endpoint is None and self.command == "GET" and route.startswith("models/"):
            endpoint, param = _endpoints.retrieve_model, route[len("models/") :]
        if endpoint is None and (batches := _anthropic_batches.route(self.command, route)) is not None:
            endpoint, param = batches  # Message Batches: no body but on create; list reads the query
            body = dict(parse_qsl(urlsplit(self.path).query)) if self.command == "GET" else body or {}
        if endpoint is None:
            raise ApiError(404, f"Invalid URL ({self.command} {path})", code="unknown_url")
        if self.command == "POST" and not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        call = Call(
            body=body if isinstance(body, dict) else {},
            script=self.server.script,
            omit_usage=fault is not None and fault.kind == "no_usage",
            path_param=param,
        )
        return endpoint(call)

    # -- faults ------------------------------------------------------------------------------
    def _pre_fault(self, fault: Fault) -> bool:
        """Apply a fault that acts before the answer; True when the request is done."""
        if fault.kind == "reset":
            self.close_connection = True
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return True
        if fault.kind == "slow":
            if self.server.stopping.wait(fault.delay if fault.delay is not None else 5.0):
                self._drop()  # the server is stopping: don't answer late
            return False
        if fault.kind in ERROR_FAULTS:
            message, kind, code = _FAULT_ERRORS[fault.kind]
            headers: dict[str, str] = {}
            if fault.retry_after is not None:
                headers["retry-after"] = _seconds(fault.retry_after)
                headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            status = fault.status or ERROR_FAULTS[fault.kind]
            body: Any = {"error": {"message": message, "type": kind, "param": None, "code": code}}
            if self._anthropic:
                headers.pop("retry-after-ms", None)  # the Messages API sends retry-after only
                status, body = anthropic.fault_error(fault.kind, fault.status, self._request_id)
            self._send_json(status, body, headers)
            return True
        return False

    # -- response ----------------------------------------------------------------------------
    def _error_body(self, error: ApiError) -> Any:
        if getattr(self, "_anthropic", False):
            return anthropic.api_error_body(error, self._request_id)
        return error.body()

    def _common_headers(self) -> None:
        if getattr(self, "_anthropic", False):
            for name, value in anthropic.headers(self._request_id):
                self.send_header(name, value)
            return
        self.send_header("x-request-id", self._request_id)
        self.send_header("openai-processing-ms", str(round((time.monotonic() - self._started) * 1000)))
        self.send_header("openai-version", "2020-10-01")
        self.send_header("openai-organization", "rlm-toolkit-offline")

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = isinstance(body, bytes)  # a file body (Message Batches results, JSONL)
        data = body if raw else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/binary" if raw else "application/json")
        self.send_header("content-length", str(len(data)))
        self._common_headers()
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        self._headers_sent = True
        self.wfile.write(data)

    def _send_stream(self, answer: Answer, fault: Fault | None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self._common_headers()
        self.end_headers()
        self._headers_sent = True
        kind = fault.kind if fault else None
        after = fault.after_chunks if fault is not None else None
        cut_after = (2 if after is None else after) if kind == "cut_stream" else -1
        bad_after = (1 if after is None else after) if kind == "malformed_sse" else -1
        error_after = (1 if after is None else after) if kind == "stream_error" else -1
        sent = 0
        for event in answer.events or ():
            if sent == cut_after:
                self._drop()
            if sent == bad_after:
                self._write_chunk(
                    anthropic.MALFORMED_EVENT
                    if self._anthropic
                    else b'data: {"id": "broken", "choices": [{"delta": \n\n'
                )
            if sent == error_after:
                # The API's in-band error: the SDK raises it; the stream ends cleanly after it.
                error = anthropic.stream_error_event() if self._anthropic else _STREAM_ERROR
                self._write_chunk(_encode(error))
                self.wfile.write(b"0\r\n\r\n")
                return
            if (
                event.token
                and self.server.token_delay > 0
                and self.server.stopping.wait(self.server.token_delay)
            ):
                self._drop()
            self._write_chunk(_encode(event))
            sent += 1
        if sent == cut_after:
            self._drop()
        if answer.done:
            self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _drop(self) -> None:
        """Close the connection mid-answer (no terminating chunk)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # the client hung up before we cut it off: the drop happened anyway
            logger.debug("offline OpenAI server: client went away before the planned drop: %s", exc)
        raise _Abort

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (garbage request lines, bad headers) in the API's JSON shape."""
        self._started = getattr(self, "_started", time.monotonic())
        self._request_id = getattr(self, "_request_id", f"req_{uuid.uuid4().hex}")
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # always answer with a status line and headers
        try:
            self._send_json(code, ApiError(code, message or "Bad request.").body())
        except OSError as exc:  # a client that sends garbage often hangs up before the answer
            logger.debug("offline OpenAI server: client went away before the %d answer: %s", code, exc)


_STREAM_ERROR = SseEvent(
    {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
)


def _encode(event: SseEvent) -> bytes:
    data = event.data if isinstance(event.data, str) else json.dumps(event.data)
    prefix = f"event: {event.event}\n" if event.event else ""
    return f"{prefix}data: {data}\n\n".encode()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
