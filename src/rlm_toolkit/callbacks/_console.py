"""``ConsoleCallback``: one readable line per LLM call, errors and retries in colour (rich)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rlm_toolkit.callbacks._base import BaseCallback
from rlm_toolkit.callbacks._types import LLMResponse

if TYPE_CHECKING:
    from rich.console import Console

_PREVIEW = 80
_console_lock = threading.RLock()


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _ms(kwargs: dict[str, Any]) -> str:
    duration = kwargs.get("duration_ms")
    return f"{duration:.0f} ms" if isinstance(duration, (int, float)) else "? ms"


class ConsoleCallback(BaseCallback):
    """Prints to stderr (or ``console``): ``✓ chat gpt-4o · 45 tokens (12 in, 33 out) · 523 ms``
    (``tokens n/a`` when the call reported no usage).

    ``verbose`` adds start lines (with a short prompt preview), tool steps and runs;
    ``show_tokens`` echoes streamed tokens as they arrive; ``show_cost`` adds the estimated cost.
    """

    verbose = False
    show_tokens = False
    show_cost = False
    console: Console | None = None

    def __init__(
        self,
        verbose: bool = False,
        show_tokens: bool = False,
        show_cost: bool = False,
        console: Console | None = None,
    ) -> None:
        self.verbose = verbose
        self.show_tokens = show_tokens
        self.show_cost = show_cost
        self.console = console

    @property
    def wants_tokens(self) -> bool:
        return self.show_tokens or type(self).on_token is not ConsoleCallback.on_token

    def _out(self) -> Console:
        console = self.console
        if console is None:
            from rich.console import Console  # imported on first use: rich is not cheap

            with _console_lock:
                console = self.console
                if console is None:
                    console = self.console = Console(stderr=True)
        return console

    def _line(self, markup: str) -> None:
        with _console_lock:
            if self.__dict__.get("_mid_stream"):
                self._out().print()
                self._mid_stream = False
            self._out().print(markup, highlight=False, soft_wrap=True)

    @staticmethod
    def _esc(text: object) -> str:
        from rich.markup import escape

        return escape(str(text))

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        if self.verbose:
            what = self._esc(f"{kwargs.get('operation') or 'llm'} {kwargs.get('model') or '?'}")
            self._line(
                f"[cyan]→[/] {what} · prompt {len(prompt)} chars: [dim]{self._esc(_preview(prompt))}[/]"
            )

    def on_token(self, token: str, **kwargs: Any) -> None:
        if self.show_tokens:
            with _console_lock:
                self._out().print(token, end="", markup=False, highlight=False, soft_wrap=True)
                self._mid_stream = True

    def on_llm_end(self, response: LLMResponse, **kwargs: Any) -> None:
        usage = response.usage
        what = self._esc(f"{kwargs.get('operation') or 'llm'} {kwargs.get('model') or response.model or '?'}")
        tokens = (
            f"{usage.total_tokens} tokens ({usage.prompt_tokens} in, {usage.completion_tokens} out)"
            if usage.known
            else "tokens n/a"  # not reported (e.g. a stream without include_usage), not zero
        )
        parts = [f"[green]✓[/] {what}", tokens, _ms(kwargs)]
        if self.show_cost:
            parts.append(f"${response.cost:.6f}" if response.cost is not None else "cost n/a")
        if self.verbose and response.finish_reason:
            parts.append(self._esc(f"finish={response.finish_reason}"))
        self._line(" · ".join(parts))

    def on_error(self, error: BaseException, **kwargs: Any) -> None:
        what = self._esc(
            f"{kwargs.get('operation') or 'call'} {kwargs.get('model') or kwargs.get('tool_name') or ''}"
        )
        message = self._esc(f"{type(error).__name__}: {error}")
        self._line(f"[bold red]✗ {what.rstrip()}[/] · [red]{message}[/] · {_ms(kwargs)}")

    def on_retry(self, attempt: int, max_attempts: int, error: BaseException | None, **kwargs: Any) -> None:
        delay = kwargs.get("delay_s")
        wait = f" in {delay:.2f} s" if isinstance(delay, (int, float)) else ""
        cause = self._esc(f": {type(error).__name__}: {error}") if error is not None else ""
        self._line(f"[yellow]↻ retry {attempt}/{max_attempts}{wait}{cause}[/]")

    def on_tool_start(self, tool_name: str, tool_input: Any, **kwargs: Any) -> None:
        if self.verbose:
            self._line(f"[cyan]→ tool[/] {self._esc(tool_name)}")

    def on_tool_end(self, tool_name: str, tool_output: Any, **kwargs: Any) -> None:
        if self.verbose:
            self._line(f"[green]✓ tool[/] {self._esc(tool_name)} · {_ms(kwargs)}")

    def on_run_start(self, prompt: str, **kwargs: Any) -> None:
        if self.verbose:
            self._line(f"[bold cyan]▶ run[/] prompt {len(prompt)} chars")

    def on_run_end(self, result: Any, **kwargs: Any) -> None:
        if not self.verbose:
            return
        error = kwargs.get("error")
        if error is not None:  # the error itself was printed by on_error, where it happened
            self._line(
                f"[bold red]■ run failed[/] · [red]{self._esc(type(error).__name__)}[/] · {_ms(kwargs)}"
            )
        else:
            self._line(f"[bold green]■ run done[/] · {_ms(kwargs)}")
