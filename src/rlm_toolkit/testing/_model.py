"""The deterministic offline demo model: tokenizer, reply text, prompt accounting, embeddings.

Everything here is a pure function of the request, so a streamed and a non-streamed call with
the same prompt produce the same text and the same usage, run after run.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from rlm_toolkit.testing import _rlm_play

#: A token is a word or one punctuation mark with its leading whitespace; trailing whitespace
#: is a token of its own. Concatenating the tokens gives back the text exactly.
_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
#: Tokens added per input message, like the real chat API's framing overhead.
MESSAGE_OVERHEAD = 3
#: Tokens added once per request (the assistant reply priming).
REPLY_PRIMING = 3
_ECHO_LIMIT = 200

_SENTENCES = (
    "I am the rlm-toolkit offline model, so this answer was made on your machine.",
    "Everything here is deterministic: ask again and you will get the very same words.",
    "No network was used; the reply is derived from your prompt alone.",
    "Streaming, usage and tool calls all behave like the real API, only offline.",
)
_HAIKU_LINES = (
    ("Quiet keys at dawn,", "Soft light on the terminal,", "Morning stillness hums."),
    ("Lines of thought unfold,", "A cursor blinks in the dark,", "Patient as the moon."),
    ("Small steps, one by one,", "The loop turns and turns again,", "Until it is done."),
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens whose concatenation is exactly ``text``."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def stable_hash(text: str) -> int:
    """A process-independent hash (``hash()`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of text/input_text/output_text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def prompt_tokens(messages: Iterable[Any], extra: Iterable[str] = ()) -> int:
    """Input tokens: every message's text plus a fixed overhead per message and per request."""
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD
        if isinstance(message, Mapping):
            total += count_tokens(content_text(message.get("content")))
            for call in message.get("tool_calls") or ():
                if isinstance(call, Mapping):
                    total += count_tokens(json.dumps(call.get("function", call), sort_keys=True))
        elif isinstance(message, str):
            total += count_tokens(message)
    for text in extra:
        total += count_tokens(text)
    return total


def last_user_text(messages: Iterable[Any]) -> str:
    """The text of the last user message (or the last message of any role)."""
    last_any = ""
    last_user: str | None = None
    for message in messages:
        if isinstance(message, str):
            last_user = message
        elif isinstance(message, Mapping):
            text = content_text(message.get("content"))
            last_any = text
            if message.get("role", "user") == "user":
                last_user = text
    return last_user if last_user is not None else last_any


def demo_reply(prompt: str, variant: int = 0) -> str:
    """The offline model's reply to ``prompt`` (``variant`` > 0 for the extra choices of ``n``)."""
    prompt = " ".join(prompt.split())
    seed = stable_hash(prompt) + variant
    if not prompt:
        return "Hello! I am the rlm-toolkit offline model. Ask me anything."
    match = re.search(r"\bhaiku\b(?:\s+(?:about|on|for)\s+(?P<topic>[^.?!]+))?", prompt, re.IGNORECASE)
    if match:
        lines = _HAIKU_LINES[seed % len(_HAIKU_LINES)]
        topic = (match.group("topic") or "").strip()
        if topic:
            first = f"{topic[:1].upper()}{topic[1:]}, line by line,"
            return "\n".join((first, lines[1], lines[2]))
        return "\n".join(lines)
    echo = prompt if len(prompt) <= _ECHO_LIMIT else prompt[: _ECHO_LIMIT - 3].rstrip() + "..."
    if echo[-1] not in ".?!":
        echo += "."
    sentence = _SENTENCES[seed % len(_SENTENCES)]
    return f"You said: {echo} {sentence}"


def reply_for(messages: list[Any], variant: int = 0) -> str:
    """The demo reply to a conversation: plays a recursive run (and answers its sub-calls),
    answers a trailing tool result, else the last user text."""
    played = _rlm_play.recursive_reply(messages)
    if played is not None:
        return played
    last = messages[-1] if messages else None
    if isinstance(last, Mapping) and last.get("role") == "tool":
        result = " ".join(content_text(last.get("content")).split())
        result = result if len(result) <= _ECHO_LIMIT else result[: _ECHO_LIMIT - 3].rstrip() + "..."
        return f"The tool returned: {result}. {_SENTENCES[(stable_hash(result) + variant) % len(_SENTENCES)]}"
    prompt = last_user_text(messages)
    sub = _rlm_play.subcall_reply(prompt) if len(messages) == 1 else None
    return sub if sub is not None else demo_reply(prompt, variant)


def apply_limits(text: str, *, max_tokens: int | None, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first ``stop`` string, then at ``max_tokens``; True when truncated by length."""
    cut = len(text)
    for marker in stop:
        if marker:
            found = text.find(marker)
            if 0 <= found < cut:
                cut = found
    text = text[:cut]
    if max_tokens is not None and max_tokens >= 0:
        tokens = tokenize(text)
        if len(tokens) > max_tokens:
            return "".join(tokens[:max_tokens]), True
    return text, False


def embedding(text: str, dimensions: int) -> list[float]:
    """A unit-length vector derived from ``text`` (same text, same vector), rounded to float32."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


def embedding_base64(vector: list[float]) -> bytes:
    """Little-endian float32 bytes of ``vector`` (the wire format of ``encoding_format=base64``)."""
    return struct.pack(f"<{len(vector)}f", *vector)
