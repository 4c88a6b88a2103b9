"""How fast the trajectory viewer opens a big run, and how big its page is (not a test).

Writes a JSONL file of N spans shaped like a long recursive run with content captured (a root
run; per turn a chat call with messages, a code execution with code and output, and one sub-call
inside every code step; a nested run every 50 turns), renders it with ``rlm-view``'s writer, opens
it from disk in Debian's headless Chromium and reports the time from navigation start until the
page has rendered (``performance.now()`` when the viewer is ready), median of ``--rounds``:

    .venv/bin/python benchmarks/viewer.py --spans 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rlm_toolkit.exporters import JSONLSpanExporter, write_html

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def make_run(path: Path, spans: int, content: bool = True) -> int:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(path)))
    tracer = provider.get_tracer("benchmark")
    written = 0
    message = '[{"role": "user", "parts": [{"type": "text", "content": "' + "Find the code. " * 20 + '"}]}]'
    code = "found = [llm_query(f'Answer from {w}') for w in windows[:1]]\nprint(found)\n" * 3
    with tracer.start_as_current_span(
        "invoke_agent rlm", attributes={"gen_ai.operation.name": "invoke_agent"}
    ):
        written += 1
        turn = 0
        while written < spans:
            turn += 1
            chat = {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 400 + turn % 50,
                "gen_ai.usage.output_tokens": 120,
                "gen_ai.usage.cost": 0.0002,
                "gen_ai.input.messages": message,
                "gen_ai.output.messages": message,
            }
            if not content:
                chat = {k: v for k, v in chat.items() if "messages" not in k}
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat):
                written += 1
            tool = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "repl",
                "gen_ai.tool.call.arguments": code,
                "gen_ai.tool.call.result": "['The secret launch code is 7319-ALPHA.']\n" * 2,
            }
            if not content:
                tool = {k: v for k, v in tool.items() if "call" not in k}
            with tracer.start_as_current_span("execute_tool repl", attributes=tool):
                written += 1
                with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat):
                    written += 1
                if turn % 50 == 0:
                    with tracer.start_as_current_span(
                        "invoke_agent rlm", attributes={"gen_ai.operation.name": "invoke_agent"}
                    ):
                        written += 1
    provider.shutdown()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--no-content", action="store_true", help="spans without captured text")
    args = parser.parse_args()
    if not os.path.exists(args.chromium):
        print(f"viewer.py: no Chromium at {args.chromium} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        jsonl, html = Path(tmp) / "big.jsonl", Path(tmp) / "big.html"
        count = make_run(jsonl, args.spans, content=not args.no_content)
        write_html(jsonl, html)
        size = html.stat().st_size
        times: list[float] = []
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=args.chromium, args=ARGS, headless=True
            )
            for _ in range(args.rounds):
                page = context.new_page()
                page.goto(html.as_uri())
                page.wait_for_function("window.rlmViewer && window.rlmViewer.ready", timeout=120_000)
                times.append(page.evaluate("window.rlmViewer.loadMs"))
                rows = page.evaluate("document.querySelectorAll('#tree .row').length")
                page.close()
            context.close()
    print(f"spans: {count}  rows rendered at open: {rows}")
    print(f"page size: {size_note(count, size)}")
    print(f"load (navigation start to rendered), median of {len(times)}: {statistics.median(times):.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f})")  # fmt: skip
    return 0


def size_note(count: int, size: int) -> str:
    return f"html {size / 1e6:.2f} MB, {size / count * 1000 / 1e3:.0f} kB per 1,000 spans"


if __name__ == "__main__":
    sys.exit(main())
