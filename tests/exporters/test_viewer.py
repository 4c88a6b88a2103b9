"""The viewer's reader, page writer and ``rlm-view`` command (the page itself is tested in a
real browser in tests/viewer_browser/)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rlm_toolkit.exporters import JSONLSpanExporter, read_otlp_jsonl, write_html

HOSTILE = "</script><script>alert(1)</script><!-- \u2028\u2029 </SCRIPT >"


def _spans_file(path: Path, prompt: str = "hello") -> Path:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JSONLSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("root", attributes={"prompt": prompt}),
        tracer.start_as_current_span("child"),
    ):
        pass
    provider.shutdown()
    return path


def _embedded(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="rlm-data">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_write_html_embeds_hostile_text_inertly_and_it_round_trips(tmp_path: Path) -> None:
    out = write_html(_spans_file(tmp_path / "a.jsonl", HOSTILE), tmp_path / "a.html")
    html = Path(out).read_text(encoding="utf-8")
    assert html.lower().count("</script") == 2  # the data block's and the code block's own ends
    assert "<!--" not in html and "\u2028" not in html and "\u2029" not in html
    data = _embedded(html)
    (root,) = [s for s in data["spans"] if s["n"] == "root"]
    assert root["a"]["prompt"] == HOSTILE
    assert "http://" not in html and "https://" not in html.replace("https://opentelemetry.io/schemas", "")


def test_write_html_takes_sdk_spans_too(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("only"):
        pass
    out = write_html(memory.get_finished_spans(), tmp_path / "b.html")
    assert [s["n"] for s in _embedded(Path(out).read_text(encoding="utf-8"))["spans"]] == ["only"]


def test_reader_keeps_span_logs_counts_metrics_and_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = _spans_file(tmp_path / "c.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    span = json.loads(lines[0])
    log = {"timeUnixNano": "5", "eventName": "e", "traceId": span["traceId"], "spanId": span["spanId"]}
    metric = {"name": "m", "sum": {"dataPoints": []}, "scope": {"schemaUrl": "x"}}
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(log) + "\n" + json.dumps(metric) + "\n" + '{"traceId": "ab')
    read = read_otlp_jsonl(path)
    assert (len(read.spans), len(read.logs), read.metrics) == (2, 1, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n{}\n", "not JSON"),
        ('{"hello": 1}\n', "not an OTLP/JSON span"),
        ("[1, 2]\n", "not an OTLP/JSON span"),
    ],
)
def test_a_file_that_is_not_otlp_json_lines_is_refused_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        read_otlp_jsonl(path)
    assert "\n" not in str(info.value) and "rlm-instrument --jsonl" in str(info.value)


def test_missing_path_directory_and_binary_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_otlp_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="is a directory"):
        read_otlp_jsonl(tmp_path)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_otlp_jsonl(tmp_path / "bin")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``rlm-view`` console script (pyproject's [project.scripts])."""
    script = Path(sys.executable).parent / "rlm-view"
    assert script.exists(), "rlm-view is not installed next to this python (pip install -e .)"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)


def test_rlm_view_writes_next_to_the_file_and_prints_the_path(tmp_path: Path) -> None:
    path = _spans_file(tmp_path / "run.jsonl")
    done = _cli(str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "run.html")
    assert (tmp_path / "run.html").stat().st_size > 1000
    done = _cli(str(path), "-o", str(tmp_path / "x.html"))
    assert done.returncode == 0 and (tmp_path / "x.html").exists()


@pytest.mark.parametrize("case", ["missing", "not_otlp", "out_dir_missing"])
def test_rlm_view_bad_input_is_one_line_and_status_2(tmp_path: Path, case: str) -> None:
    good = _spans_file(tmp_path / "run.jsonl")
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n", encoding="utf-8")
    args = {
        "missing": [str(tmp_path / "none.jsonl")],
        "not_otlp": [str(bad)],
        "out_dir_missing": [str(good), "-o", str(tmp_path / "no" / "x.html")],
    }[case]
    done = _cli(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("rlm-view: error: ")
    assert "Traceback" not in done.stderr
