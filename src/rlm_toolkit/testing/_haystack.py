"""A deterministic haystack: filler sentences of any size with one needle sentence in it.

For demos, tests and benchmarks of recursive runs over contexts far larger than a prompt. The
filler vocabulary avoids the words of the usual needle ("secret", "launch", "code"), so a search
for them finds the needle only.
"""

from __future__ import annotations

import random

#: The needle the demo and the tests hide, and the question that finds it.
NEEDLE = "The secret launch code is 7319-ALPHA."
QUESTION = "What is the secret launch code?"

_SUBJECTS = ("The river", "A quiet town", "The old library", "Every morning", "The gardener", "A red kite")
_VERBS = ("follows", "remembers", "paints", "watches", "carries", "measures", "visits")
_OBJECTS = (
    "the northern hills",
    "a basket of apples",
    "the evening tide",
    "seven wooden chairs",
    "the silver clock tower",
    "a map of the valley",
)
_ENDINGS = ("before the rain.", "without a sound.", "as the bells ring.", "in the long summer.", "once more.")


def make_haystack(chars: int, needle: str = NEEDLE, *, position: float = 0.62, seed: int = 0) -> str:
    """``chars`` characters (exactly) of filler with ``needle`` starting near ``position`` (0..1)."""
    if chars < len(needle) + 2:
        raise ValueError(f"make_haystack needs chars >= {len(needle) + 2}, got {chars}")
    rng = random.Random(seed)
    pool = [f"{s} {v} {o} {e}" for s in _SUBJECTS for v in _VERBS for o in _OBJECTS for e in _ENDINGS]
    parts: list[str] = []
    size = 0
    target = chars - len(needle) - 2
    while size < target:
        sentence = pool[rng.randrange(len(pool))]
        parts.append(sentence)
        size += len(sentence) + 1
    filler = " ".join(parts)[:target]
    cut = filler.rfind(". ", 0, int(target * position)) + 2  # at a sentence boundary
    if cut < 2:
        cut = 0
    text = f"{filler[:cut]}{needle} {filler[cut:]} "
    return text[:chars] if len(text) >= chars else text.ljust(chars)
