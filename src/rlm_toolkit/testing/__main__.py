"""``python -m rlm_toolkit.testing``: run the offline OpenAI-compatible server in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
from collections.abc import Sequence

from rlm_toolkit.testing._script import DEFAULT_MAX_REQUESTS
from rlm_toolkit.testing._server import OpenAIServer


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rlm_toolkit.testing",
        usage="%(prog)s [-h] [--host ADDR] [--port N] [--token-delay SECONDS] [--max-requests N]",  # one line
        description="Serve the rlm-toolkit offline OpenAI-compatible model until Ctrl-C. Script it from any "
        'process over HTTP: POST /_rlm/replies {"text": ...}, POST /_rlm/faults {"kind": "rate_limit", ...}, '
        "GET /_rlm/requests, GET /_rlm/pending, POST /_rlm/reset.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", metavar="ADDR", help="interface to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=8000, metavar="N", help="TCP port, 0 = any free one (default 8000)"
    )
    parser.add_argument(
        "--token-delay",
        type=_delay,
        default=0.02,
        metavar="SECONDS",
        help="pause before each streamed token (default 0.02)",
    )
    parser.add_argument(
        "--max-requests",
        type=_count,
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help=f"requests kept in the log GET /_rlm/requests returns (the most recent; default {DEFAULT_MAX_REQUESTS})",
    )
    args = parser.parse_args(argv)
    try:
        server = OpenAIServer(
            args.host, args.port, token_delay=args.token_delay, max_requests=args.max_requests
        ).start()
    except OSError as exc:
        print(
            f"rlm-toolkit: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    print(
        f"rlm-toolkit offline OpenAI server: {server.base_url} (control: {server.url}/_rlm/; Ctrl-C to stop)",
        flush=True,
    )
    try:
        # Ctrl-C is the documented way to stop the server: a clean exit (status 0), no traceback.
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
