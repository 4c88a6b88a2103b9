"""``StreamingCallback``: hand every streamed token to a function (or to an override)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlm_toolkit.callbacks._base import BaseCallback


class StreamingCallback(BaseCallback):
    """Calls ``on_token(token)`` for each streamed text delta.

    Use it with a function, ``StreamingCallback(on_token=print_token)``, or subclass it and
    override ``on_token(self, token)`` (no ``super().__init__()`` needed). Calls made through
    ``RLM`` stream when a token consumer is present, so tokens arrive as the model writes them.
    """

    #: The function given to the constructor; a class-level default so subclasses that skip
    #: ``super().__init__()`` still work.
    token_handler: Callable[[str], Any] | None = None

    def __init__(self, on_token: Callable[[str], Any] | None = None) -> None:
        if on_token is not None and not callable(on_token):
            raise TypeError(f"on_token must be callable, got {type(on_token)!r}")
        self.token_handler = on_token

    @property
    def wants_tokens(self) -> bool:
        return self.token_handler is not None or type(self).on_token is not StreamingCallback.on_token

    def on_token(self, token: str, **kwargs: Any) -> Any:
        handler = self.token_handler
        if handler is not None:
            return handler(token)
        return None
