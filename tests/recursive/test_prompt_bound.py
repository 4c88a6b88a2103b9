"""The root prompt stays bounded however much the code prints over many turns."""

from __future__ import annotations

import pytest

from rlm_toolkit import RLMConfig
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl


def _root_prompt_sizes(server: OpenAIServer) -> list[int]:
    sizes = []
    for request in server.requests:
        messages = (request.body or {}).get("messages") or []
        if messages and str(messages[0].get("content", "")).startswith("You are a recursive"):
            sizes.append(sum(len(str(m.get("content", ""))) for m in messages))
    return sizes


def test_old_repl_output_is_cut_to_keep_the_root_prompt_bounded(server: OpenAIServer, otel: Otel) -> None:
    # Before: the transcript was never trimmed (1 MB a turn made a 7.8 MB request at turn 9).
    for _ in range(8):
        server.queue_reply(repl('print("x" * 20_000)'), to="root")
    server.queue_reply("FINAL(done)", to="root")
    config = RLMConfig(max_output_chars=20_000, max_prompt_chars=50_000)
    result = make_rlm(server, otel, config=config).run("q", context="ctx")
    assert result.status == "final"
    sizes = _root_prompt_sizes(server)
    assert len(sizes) == 9
    # The bound: max_prompt_chars, plus the latest turn (kept whole: here one 20 K output).
    # Unbounded, the last request held all 8 outputs (> 160 K characters).
    assert max(sizes) <= 50_000 + 20_200
    assert sizes[-1] < sum(len(str(m["content"])) for m in result.transcript)  # cut, not lost: the
    # result's transcript still holds every message


def test_max_prompt_chars_is_checked() -> None:
    with pytest.raises(ValueError, match="max_prompt_chars must be an int >= 1"):
        RLMConfig(max_prompt_chars=0)
