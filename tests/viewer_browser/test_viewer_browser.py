"""The HTML viewer in a real browser (Debian's headless Chromium): real recursive runs against the
offline server, written by the JSONL exporters, opened from disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlm_toolkit.exporters import read_otlp_jsonl, read_spans_jsonl, write_html
from rlm_toolkit.testing import OpenAIServer, make_haystack

from .conftest import Page, run_to_jsonl

QUESTION = "What is the secret launch code?"
HOSTILE = "<script>alert(1)</script></script><script>alert(2)</script><!-- <b>bold</b> \u2028 \u2029 é 😀"


def _rows(page: Any) -> list[tuple[int, str]]:
    """The tree as rendered: (depth, name) per span row, in order."""
    rows = page.evaluate(
        "[...document.querySelectorAll('#tree .row[data-span-id]')]"
        ".map(r => [Number(r.dataset.depth), r.querySelector('.name').textContent])"
    )
    return [(depth, name) for depth, name in rows]


def _expected_rows(path: Path) -> list[tuple[int, str]]:
    spans = read_spans_jsonl(path)
    ids = {s.context.span_id for s in spans if s.context is not None}
    children: dict[int | None, list[Any]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[tuple[int, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            out.append((depth, span.name))
            walk(span.context.span_id if span.context else None, depth + 1)

    walk(None, 0)
    return out


def _assert_clean(seen: Page, html: Path) -> None:
    assert seen.console_errors == []
    assert seen.requests == [html.resolve().as_uri()]  # the page itself, nothing else
    assert seen.dialogs == []


@pytest.mark.parametrize("conventions", ["v1.41", "gen_ai_latest_experimental"])
def test_a_recursive_run_shows_its_tree_code_output_and_totals(
    server: OpenAIServer, open_page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conventions: str
) -> None:
    if conventions != "v1.41":  # both convention modes: the page reads either name set
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", conventions)
    jsonl = tmp_path / "run.jsonl"
    result = run_to_jsonl(server, jsonl, content=True, question=QUESTION, context=make_haystack(200_000))
    assert result.status == "final" and result.depth == 1
    html = tmp_path / "run.html"
    write_html(jsonl, html)
    seen = open_page(html)
    page = seen.page

    rows = _rows(page)
    assert rows == _expected_rows(jsonl)
    names = [name for _, name in rows]
    assert names.count("invoke_agent rlm") == 2  # the run and its nested run
    assert names.count("execute_tool repl") == 5
    assert (1, "chat gpt-4o-mini") in rows and any(d >= 3 for d, _ in rows)

    # Subtree totals match the file: tokens and cost summed over the model calls.
    spans = read_spans_jsonl(jsonl)
    chats = [dict(s.attributes or {}) for s in spans if s.name == "chat gpt-4o-mini"]
    tokens_in = sum(int(a["gen_ai.usage.input_tokens"]) for a in chats)
    tokens_out = sum(int(a["gen_ai.usage.output_tokens"]) for a in chats)
    cost = sum(float(a["gen_ai.usage.cost"]) for a in chats)
    root = page.locator("#tree .row[data-depth='0']").first
    assert root.locator(".tot-tokens").text_content() == f"{tokens_in}→{tokens_out} tok"
    assert root.locator(".tot-cost").text_content() == f"${cost:.6f}"
    assert result.usage.prompt_tokens == tokens_in
    trace_item = page.locator("#traces .trace").first.text_content() or ""
    assert f"{tokens_in}→{tokens_out} tok" in trace_item and f"${cost:.6f}" in trace_item

    # Expanding the code step that made the sub-calls shows its code and its output.
    tool = next(
        s
        for s in spans
        if s.name == "execute_tool repl"
        and "llm_query" in str(dict(s.attributes or {}).get("gen_ai.tool.call.arguments"))
    )
    attrs = dict(tool.attributes or {})
    span_id = format(tool.context.span_id, "016x")  # type: ignore[union-attr]
    page.locator(f"#tree .row[data-span-id='{span_id}']").click()
    code = page.locator("#details pre[data-part='code']").text_content()
    output = page.locator("#details pre[data-part='result']").text_content()
    assert code == attrs["gen_ai.tool.call.arguments"]
    assert output == attrs["gen_ai.tool.call.result"]
    assert result.answer in (output or "")
    # Collapsing it hides its sub-calls; expanding shows them again.
    before = len(_rows(page))
    page.locator(f"#tree .row[data-span-id='{span_id}'] .tog").click()
    assert len(_rows(page)) < before
    page.locator(f"#tree .row[data-span-id='{span_id}'] .tog").click()
    assert len(_rows(page)) == before

    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    assert (tmp_path / "viewer.png").stat().st_size > 10_000
    _assert_clean(seen, html)


def test_a_failed_run_opens_on_its_failure(server: OpenAIServer, open_page: Any, tmp_path: Path) -> None:
    import openai

    jsonl = tmp_path / "failed.jsonl"
    server.queue_fault("unauthorized")
    with pytest.raises(openai.AuthenticationError):
        run_to_jsonl(server, jsonl, content=True, question=QUESTION, context=make_haystack(20_000))
    html = tmp_path / "failed.html"
    write_html(jsonl, html)
    seen = open_page(html)
    page = seen.page
    failing = [
        s
        for s in read_spans_jsonl(jsonl)
        if s.status.status_code.name == "ERROR" and s.name.startswith("chat")
    ]
    assert len(failing) == 1
    selected = page.locator("#tree .row.sel")
    assert selected.get_attribute("data-span-id") == format(failing[0].context.span_id, "016x")  # type: ignore[union-attr]
    assert "err" in (selected.get_attribute("class") or "")
    assert "AuthenticationError" in (page.locator("#details [data-part='error']").text_content() or "")
    assert "2 errors" in (page.locator("#traces .trace").first.text_content() or "")
    page.screenshot(path=str(tmp_path / "failed.png"))
    _assert_clean(seen, html)


def test_content_off_shows_what_was_recorded_and_says_content_was_not_captured(
    server: OpenAIServer, open_page: Any, tmp_path: Path
) -> None:
    jsonl = tmp_path / "private.jsonl"
    run_to_jsonl(server, jsonl, content=False, question=QUESTION, context=make_haystack(50_000))
    assert "launch code" not in jsonl.read_text(encoding="utf-8")
    html = tmp_path / "private.html"
    write_html(jsonl, html)
    seen = open_page(html)
    page = seen.page
    banner = page.locator("#banner")
    assert banner.is_visible() and "Content was not captured" in (banner.text_content() or "")
    page.locator("#tree .row[data-span-id]", has_text="execute_tool repl").first.click()
    assert page.locator("#details [data-part='content-missing']").is_visible()
    assert page.locator("#details pre[data-part='code']").count() == 0
    assert page.locator("#tree .row[data-depth='0'] .tot-tokens").text_content() not in ("", None)
    _assert_clean(seen, html)


def test_a_captured_prompt_cannot_run_script_in_the_page(
    server: OpenAIServer, open_page: Any, tmp_path: Path
) -> None:
    jsonl = tmp_path / "hostile.jsonl"
    run_to_jsonl(server, jsonl, content=True, question=HOSTILE, context=HOSTILE * 50)
    assert "</script>" in jsonl.read_text(encoding="utf-8")  # the file really carries it
    html = tmp_path / "hostile.html"
    write_html(jsonl, html, title=HOSTILE)
    text = html.read_text(encoding="utf-8")
    assert text.count("</script>") == 2 and text.count("<!--") == 0
    seen = open_page(html)
    page = seen.page
    assert page.evaluate("document.scripts.length") == 2
    page.locator("#tree .row[data-depth='0']").first.click()
    shown = page.locator("#details").text_content() or ""
    assert "<script>alert(1)</script></script><script>alert(2)</script>" in shown
    assert page.locator("#details b").count() == 0  # HTML in the data is text, not markup
    assert (
        page.title() == HOSTILE.replace("\u2028", " ").replace("\u2029", " ") or HOSTILE[:8] in page.title()
    )
    _assert_clean(seen, html)


def _span(
    trace: str, span: str, parent: str, name: str, start: int, end: int | None, **attrs: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "traceId": trace * 32 if len(trace) == 1 else trace,
        "spanId": span * 16 if len(span) == 1 else span,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + start * 1_000_000),
        "attributes": [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}}
            for k, v in attrs.items()
        ],
        "status": {},
    }
    if parent:
        obj["parentSpanId"] = parent * 16 if len(parent) == 1 else parent
    if end is not None:
        obj["endTimeUnixNano"] = str(1_700_000_000_000_000_000 + end * 1_000_000)
    return obj


def test_what_real_files_contain_several_traces_missing_parents_unfinished_streams_latest_names(
    open_page: Any, tmp_path: Path
) -> None:
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    lines = [
        _span("a", "1", "", "app", 0, 100),
        _span(
            "a",
            "2",
            "1",
            "chat m",
            10,
            30,
            **chat,
            **{
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.usage.cache_write.input_tokens": 3,
            },
        ),
        _span(
            "a", "3", "1", "chat m", 20, None, **chat, **{"rlm.stream.end_reason": "abandoned"}
        ),  # unfinished
        _span(
            "b",
            "4",
            "9",
            "embeddings m",
            0,
            5,
            **{"gen_ai.operation.name": "embeddings", "gen_ai.usage.input_tokens": 2},
        ),
        {"name": "rlm.client.cost", "sum": {"dataPoints": []}},
        {"timeUnixNano": "1", "eventName": "x", "traceId": "a" * 32, "spanId": "2" * 16, "attributes": []},
    ]
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn', encoding="utf-8")
    assert len(read_otlp_jsonl(jsonl).spans) == 4
    html = tmp_path / "mixed.html"
    write_html(jsonl, html)
    seen = open_page(html)
    page = seen.page
    assert page.locator("#traces .trace").count() == 2
    assert _rows(page) == [(0, "app"), (1, "chat m"), (1, "chat m")]
    assert page.locator("#tree .row", has_text="unfinished").count() == 1
    assert page.locator("#tree .row[data-depth='0'] .tot-tokens").text_content() == "5→7 tok"
    page.locator("#traces .trace").nth(1).click()
    assert _rows(page) == [(0, "embeddings m")]
    assert "parent not in file" in (page.locator("#tree .row[data-span-id]").first.text_content() or "")
    _assert_clean(seen, html)


def test_a_big_run_opens_on_its_failure_past_the_first_page_and_shows_concurrent_calls(
    open_page: Any, tmp_path: Path
) -> None:
    chat = {"gen_ai.operation.name": "chat"}
    lines = [_span("c", "0" * 15 + "1", "", "invoke_agent rlm", 0, 10_000)]
    for i in range(450):
        lines.append(_span("c", f"{i + 2:016x}", "0" * 15 + "1", f"step {i}", i * 10, i * 10 + 5, **chat))
    lines[401]["status"] = {"code": 2, "message": "boom"}
    # two sub-calls that overlap in time under one code step (llm_query_batched)
    lines.append(_span("c", "a" * 16, f"{2:016x}", "batched a", 0, 4, **chat))
    lines.append(_span("c", "b" * 16, f"{2:016x}", "batched b", 1, 5, **chat))
    jsonl = tmp_path / "big.jsonl"
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    html = tmp_path / "big.html"
    write_html(jsonl, html)
    seen = open_page(html)
    page = seen.page
    selected = page.locator("#tree .row.sel")
    assert selected.get_attribute("data-span-id") == f"{402:016x}"  # lines[401] is step 400, span id 402
    assert "boom" in (page.locator("#details [data-part='error']").text_content() or "")
    more = page.locator("#tree .row.more")
    assert more.count() == 1 and "49 more" in (more.text_content() or "")
    more.click()
    assert page.locator("#tree .row.more").count() == 0
    assert len(_rows(page)) == 451
    page.locator("#tree .row[data-span-id]", has_text="step 0").locator(".tog").click()
    concurrent = page.locator("#tree .row", has_text="∥ concurrent")
    assert concurrent.count() == 2
    _assert_clean(seen, html)
