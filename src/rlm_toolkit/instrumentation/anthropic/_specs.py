"""What each instrumented Messages surface is: API label, response extractor, stream or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlm_toolkit.instrumentation.anthropic import _response as rs


@dataclass(frozen=True)
class ApiSpec:
    api: str  # e.g. "messages.create", "beta.messages.stream"
    on_response: Callable[[Any, Any], None]
    #: ``messages.stream()``: the request streams though no ``stream`` kwarg says so.
    streams: bool = False


MESSAGES_CREATE = ApiSpec("messages.create", rs.message_response)
MESSAGES_PARSE = ApiSpec("messages.parse", rs.message_response)
MESSAGES_STREAM = ApiSpec("messages.stream", rs.message_response, streams=True)
BETA_CREATE = ApiSpec("beta.messages.create", rs.message_response)
BETA_PARSE = ApiSpec("beta.messages.parse", rs.message_response)
BETA_STREAM = ApiSpec("beta.messages.stream", rs.message_response, streams=True)
