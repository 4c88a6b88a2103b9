"""Offline task generators with known answers: S-NIAH-style needles and an OOLONG-style count.

Contexts are written as files beside the task file (``context_path``), so a 10M-character
task costs the task file one line. The bundled offline model plays the needle search
deterministically (it finds the sentence with the question's rarest keyword) and the
aggregation (its code counts the records chunk by chunk through ``llm_query_batched``).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from rlm_toolkit.testing import make_haystack

_WORDS = ("ALPHA", "BRAVO", "DELTA", "ECHO", "FOXTROT", "KILO", "OSCAR", "SIERRA", "TANGO", "ZULU")
_LABELS = ("positive", "negative", "neutral")
_ITEMS = ("the blender", "a desk lamp", "the headphones", "a rain jacket", "the kettle", "a bike lock")
_TONES = {
    "positive": ("works wonderfully", "exceeded every hope", "is a delight"),
    "negative": ("broke within a week", "was a waste of money", "disappointed everyone"),
    "neutral": ("arrived on Tuesday", "is about average", "does what the box says"),
}
MIN_CHARS, MAX_CHARS = 10_000, 10_000_000


def _write(out_dir: str, rows: list[dict[str, Any]], name: str) -> str:
    path = os.path.join(out_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def needle_tasks(out_dir: str, count: int = 20, chars: int = 100_000, seed: int = 0) -> str:
    """Write ``count`` needle tasks (``chars`` characters each, 10k..10M) under ``out_dir``;
    return the task file's path. Each hides ``The secret launch code is NNNN-WORD.`` at a
    different depth; the answer is the code, scored with ``contains``."""
    if not MIN_CHARS <= chars <= MAX_CHARS:
        raise ValueError(f"chars must be between {MIN_CHARS:,} and {MAX_CHARS:,}, got {chars:,}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = random.Random(seed)
    os.makedirs(os.path.join(out_dir, "contexts"), exist_ok=True)
    rows = []
    for i in range(count):
        code = f"{rng.randrange(1000, 10000)}-{_WORDS[rng.randrange(len(_WORDS))]}"
        task_id = f"niah-{chars}-{i:03d}"
        context = make_haystack(
            chars, f"The secret launch code is {code}.", position=0.05 + 0.9 * rng.random(), seed=seed + i
        )
        rel = os.path.join("contexts", f"{task_id}.txt")
        with open(os.path.join(out_dir, rel), "w", encoding="utf-8") as f:
            f.write(context)
        rows.append(
            {
                "id": task_id,
                "prompt": "What is the secret launch code?",
                "context_path": rel,
                "answer": code,
                "scorer": "contains",
            }
        )
    return _write(out_dir, rows, "niah.jsonl")


def aggregation_tasks(out_dir: str, count: int = 5, records: int = 2_000, seed: int = 0) -> str:
    """Write ``count`` OOLONG-style tasks: ``records`` short reviews, one a line, each with a
    sentiment label; the question asks how many carry a given label (``numeric`` scorer)."""
    if count < 1 or records < 1:
        raise ValueError(f"count and records must be >= 1, got {count} and {records}")
    rng = random.Random(seed)
    os.makedirs(os.path.join(out_dir, "contexts"), exist_ok=True)
    rows = []
    for i in range(count):
        labels = [_LABELS[rng.randrange(len(_LABELS))] for _ in range(records)]
        lines = [
            f"Review {n + 1} [{label}]: {_ITEMS[rng.randrange(len(_ITEMS))]} "
            f"{_TONES[label][rng.randrange(3)]}."
            for n, label in enumerate(labels)
        ]
        target = _LABELS[i % len(_LABELS)]
        task_id = f"oolong-{records}-{i:03d}"
        rel = os.path.join("contexts", f"{task_id}.txt")
        with open(os.path.join(out_dir, rel), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        rows.append(
            {
                "id": task_id,
                "prompt": f"How many reviews are labelled [{target}]? Answer with the number.",
                "context_path": rel,
                "answer": str(labels.count(target)),
                "scorer": "numeric",
            }
        )
    return _write(out_dir, rows, "oolong.jsonl")
