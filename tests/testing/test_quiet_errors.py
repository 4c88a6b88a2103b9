"""Errors the offline server swallows on purpose are still said, at debug level."""

from __future__ import annotations

import logging
import socket

import pytest

from rlm_toolkit.testing._http import Handler, _Abort


def test_drop_on_a_connection_already_gone_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rlm_toolkit.testing")
    handler = Handler.__new__(Handler)  # no request: only the drop itself is exercised
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.close()  # the client hung up (and the socket is gone) before we cut it off
    handler.connection = sock
    with pytest.raises(_Abort):
        handler._drop()
    assert handler.close_connection is True
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "rlm_toolkit.testing"]
    assert len(records) == 1
    level, message = records[0]
    assert level == logging.DEBUG
    assert message.startswith("offline OpenAI server: client went away before the planned drop: [Errno ")
