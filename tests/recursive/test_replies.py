"""Odd root replies: FINAL in prose is not greedy, parsing is linear, lone surrogates are replaced."""

from __future__ import annotations

import time

from rlm_toolkit.runtime._prompts import parse_reply
from rlm_toolkit.testing import OpenAIServer

from .conftest import Otel, make_rlm, repl


def test_prose_final_ends_on_its_own_line(server: OpenAIServer, otel: Otel) -> None:
    # Before: the answer was '42)\nI hope this helps (really' (a greedy match across lines).
    server.queue_reply("FINAL(42)\nI hope this helps (really)")
    result = make_rlm(server, otel).run("q", context="ctx")
    assert (result.status, result.answer) == ("final", "42")


def test_prose_final_may_span_lines_up_to_the_first_closing_line() -> None:
    assert parse_reply("FINAL(first\nsecond)\nmore (text)").prose_final == ("text", "first\nsecond")
    assert parse_reply("FINAL(never closed\nno paren here").prose_final is None
    assert parse_reply("FINAL(a)\nFINAL(b)").prose_final == ("text", "a")
    assert parse_reply("FINAL(a)\nFINAL_VAR(x)").prose_final == ("var", "x")
    assert parse_reply("FINAL_VAR(a)b)").prose_final is None
    # Fences that do not open a repl block, and a block after them, parse as before.
    reply = parse_reply("```\nnot code\n```repl\nprint(1)\n```\nFINAL(2)")
    assert reply.code == ("print(1)",)
    assert reply.prose_final == ("text", "2")


def test_parsing_a_hostile_reply_is_linear() -> None:
    # 140 KB of unclosed FINAL( lines took 9.9 s (quadratic backtracking); now milliseconds.
    # The bound is 100x the measured time: this checks the complexity class, not speed.
    for hostile in ("FINAL(x\n" * 17_500, "```repl\n" * 17_500, "FINAL(" * 23_000, "```" * 46_000):
        started = time.perf_counter()
        parse_reply(hostile)
        assert time.perf_counter() - started < 1.0


def test_lone_surrogate_in_a_reply_becomes_a_replacement_character(server: OpenAIServer, otel: Otel) -> None:
    # Before: UnicodeEncodeError out of run() (the code went to the sandbox), or an answer
    # the app could not print.
    server.queue_reply(repl('print("a\ud800b")') + "\n")
    server.queue_reply("FINAL(bad \udc80 answer)")
    result = make_rlm(server, otel).run("q", context="ctx")
    assert result.status == "final"
    assert result.answer == "bad \ufffd answer"
    result.answer.encode("utf-8")
    assert "a\ufffdb" in result.transcript[3]["content"]
    direct = make_rlm(server, otel)
    server.queue_reply("plain \ud83d reply")
    assert direct.run("q").answer == "plain \ufffd reply"
