"""Shared test helpers: the key the tests use and recording callbacks."""

from __future__ import annotations

from typing import Any

from rlm_toolkit.callbacks import BaseCallback

API_KEY = "sk-runtime-test-secret"


class Recorder(BaseCallback):
    """Records every event as (method, keywords), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.events if n == name]

    def on_run_start(self, prompt: str, **kwargs: Any) -> None:
        self.events.append(("on_run_start", {"prompt": prompt, **kwargs}))

    def on_run_end(self, result: Any, **kwargs: Any) -> None:
        self.events.append(("on_run_end", {"result": result, **kwargs}))

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        self.events.append(("on_llm_start", {"prompt": prompt, **kwargs}))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append(("on_llm_end", {"response": response, **kwargs}))

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(("on_error", {"error": error, **kwargs}))

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        self.events.append(
            ("on_retry", {"attempt": attempt, "max_attempts": max_attempts, "error": error, **kwargs})
        )


class TokenRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def on_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)
        self.events.append(("on_token", {"token": token, **kwargs}))
