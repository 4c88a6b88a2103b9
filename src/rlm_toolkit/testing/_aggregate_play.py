"""How the offline model plays an OOLONG-style aggregation run, deterministically.

A question that asks *how many* records carry a marked target (``[label]`` in brackets, or a
``"quoted"`` phrase), e.g. ``How many reviews are labelled [positive]?``, is played in three
turns: (1) code that splits the context into records (one a line) and shows a few, (2) code
that cuts the records into chunks, asks ``llm_query_batched`` to count the target in each
chunk, adds the counts up (and prints a direct scan beside them), (3) ``FINAL_VAR``. The
sub-call prompts it builds (:data:`COUNT_PROMPT`) are answered with the number of the chunk's
lines that contain the target (case-insensitive), so the run's answer is the true count.
"""

from __future__ import annotations

import re

#: The first line of the sub-call prompts the played code builds.
COUNT_PROMPT = "Count the records below that contain the target. Answer with the number only."
#: Records per sub-call.
CHUNK_RECORDS = 250
_QUESTION_RE = re.compile(r"^\s*how many\b[^\n]*?(?P<target>\[[^\]\n]+\]|\"[^\"\n]+\")", re.IGNORECASE)
_TARGET_RE = re.compile(r"^Target: (?P<t>.*)$", re.MULTILINE)


def target_of(question: str) -> str | None:
    """The marked target of an aggregation question (``[label]`` kept whole, a quoted phrase
    without its quotes), or None when ``question`` is not one."""
    match = _QUESTION_RE.match(question)
    if match is None:
        return None
    target = match.group("target")
    return target[1:-1] if target.startswith('"') else target


def reply(target: str, turn: int) -> str:
    """The root model's reply at ``turn`` (1-based) of an aggregation run counting ``target``."""
    if turn == 1:
        return f"""Let me look at the records first.
```repl
import re
text = context if isinstance(context, str) else "\\n".join(map(str, context)) if isinstance(context, list) else str(context)
records = [line for line in text.splitlines() if line.strip()]
print(f"context: {{len(text):,}} characters, {{len(records):,}} records")
for line in records[:3]:
    print(line[:200])
target = {target!r}
```"""
    if turn == 2:
        return f"""I count the target chunk by chunk with sub-calls and add the counts up.
```repl
chunks = ["\\n".join(records[i:i + {CHUNK_RECORDS}]) for i in range(0, len(records), {CHUNK_RECORDS})]
prompts = [f"{COUNT_PROMPT}\\nTarget: {{target}}\\nRecords:\\n{{chunk}}" for chunk in chunks]
answers = llm_query_batched(prompts) if prompts else []
counts = [int(m.group()) if (m := re.search(r"\\d+", a)) else 0 for a in answers]
total = sum(counts)
direct = sum(1 for line in records if target.lower() in line.lower())
print(f"{{len(chunks)}} chunks counted {{counts}}: {{total}} in all (a direct scan finds {{direct}})")
final_answer = str(total)
```"""
    if turn == 3:
        return 'Adding up the chunk counts.\n```repl\nFINAL_VAR("final_answer")\n```'
    return "FINAL(I could not finish the count.)"


def count_reply(prompt: str) -> str | None:
    """The answer to a counting sub-call the played code built, or None if it is not one."""
    if not prompt.startswith(COUNT_PROMPT):
        return None
    match = _TARGET_RE.search(prompt)
    _, _, records = prompt.partition("\nRecords:\n")
    if match is None or not match.group("t"):
        return "0"
    target = match.group("t").lower()
    return str(sum(1 for line in records.splitlines() if target in line.lower()))
