"""The texts a recursive run sends to the root model, and the parsing of its replies.

Pure functions (no I/O). The conventions are the paper's: code in ```` ```repl ```` blocks
(```` ```python ```` accepted too), the run ends with ``FINAL(answer)`` / ``FINAL_VAR(name)``
called in code, or with the REPL's ``answer`` dict (``answer["ready"] = True``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: First words of the system prompt; the offline test model recognises a recursive run by them.
SYSTEM_MARK = "You are a recursive language model (RLM)"

SYSTEM_PROMPT = f"""{SYSTEM_MARK}: you answer a question about a context that may be far too \
large to read at once. The context is NOT in this conversation. It is the variable `context` \
in a persistent Python REPL, which you use by writing code in ```repl blocks. In the REPL:

- `context`: the data (a str, a list of str, or a dict). Inspect its size and structure first.
- `llm_query(prompt, model=None) -> str`: ask a language model about a piece of text \
(it can read roughly 100k characters at once). Use it on chunks, never on the whole context.
- `llm_query_batched(prompts, model=None) -> list[str]`: many `llm_query` calls at once, \
run concurrently; much faster than a loop.
- `rlm_query(prompt, context=None) -> str`: hand a sub-problem with its own context to a \
recursive run like you (when depth allows; otherwise it is a plain `llm_query`).
- `print(...)`: output is shown to you, truncated, after the code runs.
- `FINAL(answer)`: call it in code to finish with `answer`; `FINAL_VAR(name)` finishes with \
the value of the REPL variable `name`; or set `answer["content"] = ...` and \
`answer["ready"] = True`.
- Pure-Python stdlib modules (re, json, math, collections, itertools, ...) are available; \
files, network and processes are not.

Variables persist between your code blocks. Work step by step: look at the context, split it, \
query the pieces, combine the findings, then finish. Reply with at least one ```repl block \
in every message until you call FINAL."""

CORRECTION = (
    "Your reply had no ```repl code block and no final answer. Write Python in a ```repl "
    "block to work on `context`, or finish with FINAL(answer) in code."
)

# A code block's opener after its ```: the language tag and the end of that line.
_OPENER_RE = re.compile(r"(?:repl|python|py)[ \t]*\r?\n")
_FENCE = "```"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Reply:
    """A root-model reply split into its code blocks and a final answer written in prose."""

    code: tuple[str, ...]
    #: ``("text", answer)`` for ``FINAL(answer)``, ``("var", name)`` for ``FINAL_VAR(name)``.
    prose_final: tuple[str, str] | None


def parse_reply(text: str) -> Reply:
    """Split a reply into code blocks and a prose ``FINAL``; linear in ``len(text)``.

    Every scan moves forward only (``str.find`` and anchored matches), so a hostile reply of
    many unclosed fences or ``FINAL(`` lines costs one pass, never a regex backtrack per line.
    """
    code: list[str] = []
    prose: list[str] = []
    pos = 0
    start = 0  # where the prose not yet copied begins
    while True:
        fence = text.find(_FENCE, pos)
        if fence < 0:
            break
        opener = _OPENER_RE.match(text, fence + 3)
        if opener is None:
            pos = fence + 1
            continue
        close = text.find(_FENCE, opener.end())
        if close < 0:
            break  # no fence closes after here, so no later block can either
        block = text[opener.end() : close].strip("\n")
        if block.strip():
            code.append(block)
        prose.append(text[start:fence])
        pos = start = close + 3
    prose.append(text[start:])
    return Reply(tuple(code), _prose_final("".join(prose)))


def _prose_final(prose: str) -> tuple[str, str] | None:
    """``FINAL_VAR(name)`` or ``FINAL(answer)`` written on a line of its own (the first wins).

    ``FINAL(answer)`` ends at the first line that closes it: the same line when it ends in
    ``)``, else the first later line that does; text after that line is not part of the answer.
    """
    lines = prose.split("\n")
    text_final: tuple[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index].strip(" \t\r")
        index += 1
        if line.startswith("FINAL_VAR(") and line.endswith(")"):
            name = line[len("FINAL_VAR(") : -1].strip().strip("'\"")
            if ")" not in line[len("FINAL_VAR(") : -1] and _NAME_RE.fullmatch(name):
                return ("var", name)
            continue
        if text_final is None and line.startswith("FINAL("):
            if line.endswith(")"):
                text_final = ("text", _unquote(line[len("FINAL(") : -1].strip()))
                continue
            for end in range(index, len(lines)):
                if lines[end].rstrip(" \t\r").endswith(")"):
                    body = "\n".join(
                        [line[len("FINAL(") :], *lines[index:end], lines[end].rstrip(" \t\r")[:-1]]
                    )
                    text_final = ("text", _unquote(body.strip()))
                    index = end + 1
                    break
            else:
                break  # never closed: no later line closes anything either
    return text_final


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def describe_context(context: Any) -> str:
    """Type and size of ``context``, without copying it (it may be 10M characters)."""
    if isinstance(context, str):
        return f"a str of {len(context):,} characters"
    if isinstance(context, list):
        sizes = [len(item) if isinstance(item, str) else 0 for item in context]
        shown = ", ".join(f"{n:,}" for n in sizes[:20]) + (", ..." if len(sizes) > 20 else "")
        return f"a list of {len(context):,} str, {sum(sizes):,} characters in all (lengths: {shown})"
    if isinstance(context, dict):
        keys = ", ".join(repr(k) for k in list(context)[:20]) + (", ..." if len(context) > 20 else "")
        return f"a dict with {len(context):,} keys ({keys})"
    return f"a {type(context).__name__}"


def context_chars(context: Any) -> int | None:
    """Characters in a str or list-of-str context (None for other shapes)."""
    if isinstance(context, str):
        return len(context)
    if isinstance(context, list):
        return sum(len(item) for item in context if isinstance(item, str))
    return None


def first_message(prompt: str, context: Any) -> str:
    return (
        f"The REPL variable `context` is {describe_context(context)}.\n\n"
        f"Question: {prompt}\n\n"
        "Start by looking at the context in a ```repl block."
    )


def feedback(iteration: int, outputs: list[tuple[str, str | None]], max_chars: int) -> str:
    """The user message after the code of one reply ran: each block's output and error."""
    parts: list[str] = []
    for index, (output, error) in enumerate(outputs, 1):
        label = f"block {index}" if len(outputs) > 1 else "your code"
        shown = _trim(output, max_chars)
        text = (
            f"REPL output of {label}:\n```\n{shown}\n```"
            if shown
            else f"REPL output of {label}: (nothing printed)"
        )
        if error:
            text += f"\nError:\n```\n{_trim(error, max_chars)}\n```"
        parts.append(text)
    parts.append(
        f"(iteration {iteration}) Continue with more ```repl code, or finish with FINAL(answer) in code."
    )
    return "\n\n".join(parts)


def _trim(text: str, max_chars: int) -> str:
    text = text.rstrip("\n")
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n... [{len(text) - max_chars:,} more characters cut]"


#: What replaces a turn's message cut to keep the root prompt bounded.
CUT_NOTE = "[this earlier message was cut to keep the conversation within its size limit]"


def bounded(messages: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """``messages`` within ``max_chars`` characters: the oldest turns' messages (after the
    system prompt and the question; never the latest two) are replaced by :data:`CUT_NOTE`,
    oldest first, until the total fits. One pass: linear in the number of messages."""
    sizes = [len(str(m.get("content", ""))) for m in messages]
    total = sum(sizes)
    if total <= max_chars:
        return messages
    out = list(messages)
    for index in range(2, max(len(out) - 2, 2)):
        if total <= max_chars:
            break
        if sizes[index] > len(CUT_NOTE):
            total -= sizes[index] - len(CUT_NOTE)
            out[index] = {**out[index], "content": CUT_NOTE}
    return out
