"""Fixtures for the viewer's browser tests: Debian's headless Chromium driven by playwright, and
JSONL files written by real recursive runs against the offline server."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rlm_toolkit import RLM
from rlm_toolkit.exporters import JSONLLogExporter, JSONLSpanExporter
from rlm_toolkit.testing import OpenAIServer

CHROMIUM = os.environ.get("RLM_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",  # required as root (CI runs as root)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@dataclass
class Page:
    """An opened viewer page and everything it did: console errors, page errors, requests, dialogs."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def _browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "no Chromium at /usr/bin/chromium (install Debian's `chromium`: apt-get install -y chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    profile = tempfile.mkdtemp(prefix="rlm-view-chromium-", dir=tmp_path_factory.getbasetemp())
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_page(_browser_context: Any) -> Iterator[Callable[[Path], Page]]:
    pages: list[Any] = []

    def opener(path: Path) -> Page:
        page = _browser_context.new_page()
        pages.append(page)
        seen = Page(page)
        page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
        page.on("request", lambda r: seen.requests.append(r.url))

        def dialog(d: Any) -> None:
            seen.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.rlmViewer && window.rlmViewer.ready", timeout=30_000)
        return seen

    yield opener
    for page in pages:
        page.close()


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def run_to_jsonl(
    server: OpenAIServer, path: Path, *, content: bool, question: str, context: str, **options: Any
) -> Any:
    """One real recursive run against the offline server, its spans and logs written to ``path``
    by the JSONL exporters (content capture on or off). Returns the run's result."""
    from rlm_toolkit import instrument, uninstrument

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(path)))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(JSONLLogExporter(path)))
    instrument(tracer_provider=tracer_provider, logger_provider=logger_provider, capture_content=content)
    try:
        rlm = RLM.from_openai(
            "gpt-4o-mini",
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
            api_key="sk-viewer-test-secret",
            base_url=server.base_url,
            **options,
        )
        return rlm.run(question, context=context)
    finally:
        uninstrument()
        tracer_provider.shutdown()
        logger_provider.shutdown()
