"""How the offline model plays a recursive run, deterministically.

It recognises the runtime's system prompt by its first words (:data:`SYSTEM_MARK`, the same
string as ``rlm_toolkit.runtime._prompts.SYSTEM_MARK``, repeated here so the server stays
standard-library only; a test keeps them equal) and answers by turn: (1) code that measures the context and cuts excerpts around the
question's rarest keyword, (2) code that asks ``llm_query_batched`` about the excerpts (and,
at the root, ``rlm_query`` to confirm), (3) ``FINAL_VAR``. A nested run (its question starts
with ``Confirm:``) finishes at turn 2 through the ``answer`` dict. Sub-call prompts the code
builds (``Question: ...`` + ``Excerpt:``, or ``...`` + ``Context:``) are answered with the
excerpt's sentence that shares most keywords with the question, or ``NOT FOUND``. A question
that asks how many records carry a marked target is played by :mod:`._aggregate_play` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rlm_toolkit.testing import _aggregate_play

SYSTEM_MARK = "You are a recursive language model (RLM)"
#: The prompt prefix the played code uses for its sub-calls.
EXCERPT_PROMPT = "Answer from this excerpt only."
CONFIRM = "Confirm: "
_STOP = frozenset(
    [
        "what",
        "which",
        "where",
        "when",
        "that",
        "this",
        "with",
        "from",
        "there",
        "their",
        "have",
        "does",
        "about",
        "into",
        "hidden",
        "context",
        "text",
        "find",
        "tell",
        "give",
        "confirm",
        "answer",
        "question",
        "excerpt",
        "only",
        "whose",
        "could",
        "would",
        "should",
    ]
)
_QUESTION_RE = re.compile(r"^Question: (?P<q>.+)$", re.MULTILINE)
_SENTENCE_RE = re.compile(r"[^.!?\n]+[.!?]?")


def keywords(question: str) -> list[str]:
    words: list[str] = []
    for word in re.findall(r"[a-z]{4,}", question.lower()):
        if word not in _STOP and word not in words:
            words.append(word)
    return words[:4]


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def recursive_reply(messages: Sequence[Any]) -> str | None:
    """The next root-model reply of a recursive run, or None if ``messages`` are not one."""
    msgs = [m for m in messages if isinstance(m, Mapping)]
    if not msgs or msgs[0].get("role") != "system" or not _text(msgs[0]).startswith(SYSTEM_MARK):
        return None
    first_user = next((_text(m) for m in msgs if m.get("role") == "user"), "")
    match = _QUESTION_RE.search(first_user)
    question = match.group("q").strip() if match else ""
    turn = 1 + sum(1 for m in msgs if m.get("role") == "assistant")
    nested = question.startswith(CONFIRM)
    target = _aggregate_play.target_of(question)
    if target is not None:  # "How many records ... [label]?": count, don't search
        return _aggregate_play.reply(target, turn)
    if turn == 1:
        return _look(question)
    if turn == 2:
        return _ask(question, nested)
    if turn == 3:
        return 'Combining the findings.\n```repl\nFINAL_VAR("final_answer")\n```'
    return "FINAL(I could not finish the search.)"


def _look(question: str) -> str:
    return f"""Let me look at the context first.
```repl
import json
import re
text = context if isinstance(context, str) else "\\n".join(context) if isinstance(context, list) else json.dumps(context)
print(f"context: {{type(context).__name__}}, {{len(text):,}} characters")
keywords = {keywords(question)!r}
counts = {{k: len(re.findall(re.escape(k), text, re.IGNORECASE)) for k in keywords}}
print("keyword counts:", counts)
present = [k for k in keywords if counts[k]]
rarest = min(present, key=lambda k: counts[k]) if present else None
windows = []
if rarest is not None:
    for m in list(re.finditer(re.escape(rarest), text, re.IGNORECASE))[:8]:
        windows.append(text[max(0, m.start() - 300): m.end() + 300])
print(f"{{len(windows)}} excerpts around {{rarest!r}}")
```"""


def _ask(question: str, nested: bool) -> str:
    head = f"""Now I ask a sub-model about each excerpt.
```repl
question = {question!r}
prompts = [f"{EXCERPT_PROMPT}\\nQuestion: {{question}}\\nExcerpt:\\n{{w}}" for w in windows]
found = [a for a in llm_query_batched(prompts) if not a.startswith("NOT FOUND")] if prompts else []
print(f"{{len(found)}} of {{len(prompts)}} excerpts answer it: {{found}}")
final_answer = found[0] if found else "I could not find it in the context."
"""
    if nested:
        return head + 'answer["content"] = final_answer\nanswer["ready"] = True\n```'
    return (
        head
        + f"""confirmation = rlm_query({CONFIRM!r} + question, context="\\n".join(windows[:2])) if windows else ""
print("confirmed:", confirmation)
```"""
    )


def subcall_reply(prompt: str) -> str | None:
    """The answer to a sub-call prompt the played code built, or None if it is not one."""
    counted = _aggregate_play.count_reply(prompt)
    if counted is not None:
        return counted
    if prompt.startswith(EXCERPT_PROMPT):
        match = _QUESTION_RE.search(prompt)
        question = match.group("q") if match else ""
        _, _, excerpt = prompt.partition("\nExcerpt:\n")
    elif "\n\nContext:\n" in prompt:
        question, _, excerpt = prompt.partition("\n\nContext:\n")
    else:
        return None
    words = keywords(question)
    best, score = "", 0
    for sentence in _SENTENCE_RE.findall(excerpt):
        hits = sum(1 for w in words if w in sentence.lower())
        if hits > score:
            best, score = sentence.strip(), hits
    return best if score else "NOT FOUND"
