"""The context reaches the worker as a file in its scratch dir, read once and removed."""

from __future__ import annotations

import os

from rlm_toolkit.sandbox import Sandbox


def test_a_large_str_context_arrives_whole_and_leaves_no_file_behind() -> None:
    context = "ab\u00e9\U0001f600" * 2_500_000 + "NEEDLE"
    with Sandbox() as box:
        box.set_context(context)
        scratch = box._res.scratch
        assert scratch is not None and os.listdir(scratch) == []
        result = box.execute("print(len(context), context[-6:], context.count('\u00e9'))")
        assert result.error is None, result.error
        assert result.output.split() == [str(len(context)), "NEEDLE", "2500000"]


def test_json_contexts_and_a_replaced_context() -> None:
    with Sandbox() as box:
        box.set_context({"k": ["a", 1]})
        assert box.execute("print(context['k'])").output.strip() == "['a', 1]"
        box.execute("open('.context', 'w').write('planted')")  # the code's own file is replaced
        box.set_context(["x", "y"])
        assert box.execute("print(context)").output.strip() == "['x', 'y']"
