"""A recursive run end to end: real client, real HTTP to the offline server, a real sandbox.

The offline model plays the run deterministically (testing/_rlm_play.py): look at the context,
ask a sub-model about excerpts with ``llm_query_batched``, confirm with a nested ``rlm_query``
run, finish with ``FINAL_VAR``.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from rlm_toolkit.testing import OpenAIServer, make_haystack
from rlm_toolkit.testing._haystack import NEEDLE, QUESTION

from .conftest import API_KEY, Otel, Recorder, children_of_this_process, cpu_ticks_of_children, make_rlm, tree

CHAT = "chat gpt-4o-mini"
RUN = "invoke_agent rlm"
TOOL = "execute_tool repl"
#: The run the offline model plays: 3 root turns; the second one's code makes one llm_query
#: and one nested rlm_query run (2 turns, the second with one llm_query).
EXPECTED_TREE = [
    (
        RUN,
        [
            (CHAT, []),
            (TOOL, []),
            (CHAT, []),
            (
                TOOL,
                [
                    (CHAT, []),
                    (RUN, [(CHAT, []), (TOOL, []), (CHAT, []), (TOOL, [(CHAT, [])])]),
                ],
            ),
            (CHAT, []),
            (TOOL, []),
        ],
    )
]


def _attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def test_a_recursive_run_finds_the_needle_with_a_span_for_every_step(
    server: OpenAIServer, otel: Otel
) -> None:
    recorder = Recorder()
    context = make_haystack(2_000_000)
    rlm = make_rlm(server, otel, recorder)

    result = rlm.run(QUESTION, context=context)

    assert result.answer == NEEDLE
    assert (result.status, result.iterations, result.subcalls, result.depth) == ("final", 3, 3, 1)
    spans = otel.finished()
    assert tree(spans) == EXPECTED_TREE
    # The context never entered a prompt: every request the server saw is small.
    bodies = [r.body for r in server.requests if r.body is not None]
    assert len(bodies) == 7
    assert max(len(json.dumps(b)) for b in bodies) < 20_000
    # The root span: status, tree totals, sandbox level; its cost is the sum of the LLM spans'.
    root = next(s for s in spans if s.name == RUN and s.parent is None)
    attrs = _attrs(root)
    assert attrs["rlm.run.status"] == "final"
    assert attrs["rlm.run.subcalls"] == 3
    assert attrs["rlm.run.max_depth"] == 1
    assert attrs["rlm.run.context_chars"] == 2_000_000
    assert attrs["rlm.run.iterations"] == 3
    assert isinstance(attrs["rlm.sandbox.level"], str) and attrs["rlm.sandbox.level"]
    chat_costs = [float(_attrs(s)["gen_ai.usage.cost"]) for s in spans if s.name == CHAT]  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.cost"] == pytest.approx(sum(chat_costs))
    assert result.cost == pytest.approx(sum(chat_costs))
    chat_tokens = sum(int(_attrs(s)["gen_ai.usage.input_tokens"]) for s in spans if s.name == CHAT)  # type: ignore[call-overload]
    assert result.usage.prompt_tokens == chat_tokens
    assert result.by_model["gpt-4o-mini"].calls == 7
    # Tool spans: the REPL tool, its iteration and depth; no content with capture off.
    tools = [s for s in spans if s.name == TOOL]
    assert {_attrs(s)["gen_ai.tool.name"] for s in tools} == {"repl"}
    assert [_attrs(s)["rlm.repl.iteration"] for s in tools] == [1, 1, 2, 2, 3]  # in end order
    for span in spans:
        for value in _attrs(span).values():
            assert NEEDLE not in str(value)
            assert API_KEY not in str(value)
        assert "gen_ai.tool.call.arguments" not in _attrs(span)
    # The transcript holds the conversation, including the REPL feedback.
    assert result.transcript[0]["role"] == "system"
    assert any("1 of 1 excerpts answer it" in str(m["content"]) for m in result.transcript)
    assert children_of_this_process() == []


def test_callbacks_see_every_step_nested_by_parent_run_id(server: OpenAIServer, otel: Otel) -> None:
    recorder = Recorder()
    rlm = make_rlm(server, otel, recorder)
    result = rlm.run(QUESTION, context=make_haystack(300_000))

    starts = recorder.of("on_tool_start")
    ends = recorder.of("on_tool_end")
    assert len(starts) == len(ends) == 5
    assert {kw["tool_name"] for kw in starts + ends} == {"repl"}
    # Callbacks see the code and its output even with content capture off.
    assert "llm_query_batched" in starts[1]["tool_input"]
    assert "1 excerpts around 'secret'" in ends[0]["tool_output"]
    runs = recorder.of("on_run_start")
    assert [kw["prompt"] for kw in runs] == [QUESTION, f"Confirm: {QUESTION}"]
    root_id, nested_id = (kw["run_id"] for kw in runs)
    second_tool = starts[1]["run_id"]
    assert starts[1]["parent_run_id"] == root_id
    assert runs[1]["parent_run_id"] == second_tool
    # The llm_query sub-calls are children of the execution that made them.
    sub_calls = [
        kw for kw in recorder.of("on_llm_start") if kw["prompt"].startswith("Answer from this excerpt")
    ]
    assert len(sub_calls) == 2
    assert sub_calls[0]["parent_run_id"] == second_tool
    assert sub_calls[1]["parent_run_id"] in {
        kw["run_id"] for kw in starts if kw["parent_run_id"] == nested_id
    }
    run_ends = recorder.of("on_run_end")
    assert run_ends[-1]["result"] is result
    assert recorder.of("on_error") == []


def test_a_processor_added_by_hand_sees_the_steps_as_rlm_callbacks_do(
    server: OpenAIServer, otel: Otel
) -> None:
    """Issue #9's contract for the runtime: a ``CallbackSpanProcessor`` attached to the provider
    by hand gets the tool steps (with the code and output, capture off) and the nested runs,
    exactly as callbacks given to ``RLM`` get them."""
    from rlm_toolkit.callbacks import CallbackSpanProcessor

    by_hand, given = Recorder(), Recorder()
    otel.tracer_provider.add_span_processor(CallbackSpanProcessor([by_hand]))
    result = make_rlm(server, otel, given).run(QUESTION, context=make_haystack(300_000))
    assert result.answer == NEEDLE

    def steps(recorder: Recorder) -> list[tuple[str, str | None, str | None]]:
        return [
            (name, kw.get("tool_input"), kw.get("tool_output"))
            for name, kw in recorder.events
            if name in ("on_tool_start", "on_tool_end")
        ]

    assert len(steps(by_hand)) == 10
    assert steps(by_hand) == steps(given)
    assert "llm_query_batched" in (steps(by_hand)[2][1] or "")
    runs = [kw["prompt"] for kw in by_hand.of("on_run_start")]
    assert runs == [QUESTION, f"Confirm: {QUESTION}"]


async def test_arun_makes_the_same_tree_with_the_async_client(server: OpenAIServer, otel: Otel) -> None:
    recorder = Recorder()
    rlm = make_rlm(server, otel, recorder)
    result = await rlm.arun(QUESTION, context=make_haystack(300_000))
    assert result.answer == NEEDLE
    assert (result.status, result.subcalls, result.depth) == ("final", 3, 1)
    assert tree(otel.finished()) == EXPECTED_TREE
    assert len(recorder.of("on_tool_end")) == 5
    assert children_of_this_process() == []


def test_content_capture_puts_code_and_output_on_the_tool_spans(
    server: OpenAIServer, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from rlm_toolkit import instrument, uninstrument

    instrument(
        tracer_provider=otel.tracer_provider, logger_provider=otel.logger_provider, capture_content=True
    )
    try:
        make_rlm(server, otel).run(QUESTION, context=make_haystack(100_000))
    finally:
        uninstrument()
    (second,) = (
        s
        for s in otel.finished()
        if s.name == TOOL and _attrs(s)["rlm.run.depth"] == 0 and _attrs(s)["rlm.repl.iteration"] == 2
    )
    assert "llm_query_batched" in str(_attrs(second)["gen_ai.tool.call.arguments"])
    assert NEEDLE in str(_attrs(second)["gen_ai.tool.call.result"])


def test_context_as_a_list_or_a_dict(server: OpenAIServer, otel: Otel) -> None:
    haystack = make_haystack(50_000)
    pieces = [haystack[i : i + 10_000] for i in range(0, len(haystack), 10_000)]
    rlm = make_rlm(server, otel)
    as_list = rlm.run(QUESTION, context=pieces)
    as_dict = rlm.run(QUESTION, context={"doc": haystack})
    assert (as_list.answer, as_list.status) == (NEEDLE, "final")
    assert (as_dict.answer, as_dict.status) == (NEEDLE, "final")
    root = next(s for s in otel.finished() if s.name == RUN and s.parent is None)
    assert _attrs(root)["rlm.run.context_chars"] == 50_000


def test_run_metrics_count_iterations_subcalls_and_cost(server: OpenAIServer, otel: Otel) -> None:
    result = make_rlm(server, otel).run(QUESTION, context=make_haystack(100_000))
    data = otel.metrics.get_metrics_data()
    assert data is not None
    points: dict[str, object] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name.startswith("rlm.run."):
                    (point,) = metric.data.data_points  # type: ignore[union-attr]
                    points[metric.name] = point
                    assert dict(point.attributes or {})["rlm.run.status"] == "final"
    assert points["rlm.run.iterations"].sum == 3  # type: ignore[attr-defined]
    assert points["rlm.run.subcalls"].sum == 3  # type: ignore[attr-defined]
    assert points["rlm.run.cost"].sum == pytest.approx(result.cost)  # type: ignore[attr-defined]


def test_stream_with_context_is_a_recursive_run_yielding_its_answer(server: OpenAIServer, otel: Otel) -> None:
    rlm = make_rlm(server, otel)
    with rlm.stream(QUESTION, context=make_haystack(100_000)) as stream:
        assert server.requests == []  # nothing starts before the first next()
        pieces = list(stream)
    assert pieces == [NEEDLE]
    assert stream.result is not None and stream.result.status == "final"
    assert tree(otel.finished()) == EXPECTED_TREE


def test_ten_million_characters_never_enter_a_prompt(server: OpenAIServer, otel: Otel) -> None:
    context = make_haystack(10_000_000)
    result = make_rlm(server, otel).run(QUESTION, context=context)
    assert (result.answer, result.status) == (NEEDLE, "final")
    bodies = [json.dumps(r.body) for r in server.requests if r.body is not None]
    assert max(len(b) for b in bodies) < 20_000
    assert all("10,000,000 characters" in b for b in bodies[:1])


async def test_arun_nested_runs_do_not_starve_on_the_loops_executor(server: OpenAIServer, otel: Otel) -> None:
    # A run waiting in execute() for its nested run holds a thread; the nested run needs one too.
    # With one thread in the loop's default executor that deadlocked when runs used it.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
    rlm = make_rlm(server, otel)
    results = await asyncio.wait_for(
        asyncio.gather(*(rlm.arun(QUESTION, context=make_haystack(50_000)) for _ in range(2))), timeout=60
    )
    assert [(r.answer, r.depth) for r in results] == [(NEEDLE, 1)] * 2


async def test_cancelling_arun_ends_the_running_code_and_leaves_nothing_running(
    server: OpenAIServer, otel: Otel
) -> None:
    import asyncio

    from rlm_toolkit import RLMConfig
    from rlm_toolkit.sandbox import SandboxLimits

    recorder = Recorder()
    server.queue_reply("```repl\nwhile True:\n    pass\n```")
    limits = SandboxLimits(cpu_seconds=20, wall_seconds=20)
    rlm = make_rlm(server, otel, recorder, config=RLMConfig(sandbox_limits=limits))
    task = asyncio.ensure_future(rlm.arun("Spin", context="x"))
    deadline = asyncio.get_running_loop().time() + 30
    while not recorder.of("on_tool_start") or cpu_ticks_of_children() < 5:  # the loop is spinning
        assert asyncio.get_running_loop().time() < deadline, "the code never started"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The execution was ended by the cancellation (the worker killed), not by its own limit.
    while not [s for s in otel.finished() if s.name == TOOL]:
        assert asyncio.get_running_loop().time() < deadline, "the execution never ended"
        await asyncio.sleep(0.01)
    (tool,) = [dict(s.attributes or {}) for s in otel.finished() if s.name == TOOL]
    assert tool["rlm.repl.killed"] == "crash"
    (run,) = [s for s in otel.finished() if s.name == RUN]
    assert dict(run.attributes or {})["error.type"] == "CancelledError"
    while children_of_this_process():
        assert asyncio.get_running_loop().time() < deadline, "a sandbox worker was left running"
        await asyncio.sleep(0.01)
