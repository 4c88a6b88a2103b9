"""rlm-instrument as a user runs it: subprocesses, real exit codes, stderr text."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlm_toolkit.exporters import read_spans_jsonl

TREE = "── rlm-toolkit telemetry ──"

APP = """
import os, sys
from opentelemetry import trace
with trace.get_tracer("app").start_as_current_span("work"):
    print("app ran", flush=True)
code = sys.argv[1] if len(sys.argv) > 1 else "0"
if code == "raise":
    raise RuntimeError("app failed")
if code == "kill":
    os.kill(os.getpid(), 9)
sys.exit(int(code))
"""

PROBE = (
    "import os, sys; print('GRANDCHILD', 'rlm_toolkit.auto._child' in sys.modules, "
    "os.environ.get('PYTHONPATH'), os.environ.get('OTEL_SERVICE_NAME'))"
)
PARENT = f"""
import os, subprocess, sys
print('CHILD', 'rlm_toolkit.auto._child' in sys.modules, flush=True)
subprocess.run([sys.executable, '-c', {PROBE!r}])
"""


def env_without_telemetry(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "RLM_", "OPENAI_", "HONEYCOMB_")) and k != "PYTHONPATH"
    }
    env.update(extra)
    return env


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlm_toolkit", *args],
        capture_output=True,
        text=True,
        env=env or env_without_telemetry(),
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


# -- bad input: one line, exit 2, nothing started ---------------------------------------------
BAD_INPUT = [
    (["--bogus"], {}, "unrecognized arguments: --bogus (see rlm-instrument --help)"),
    (
        ["--exporter", "otpl"],
        {},
        "unknown exporter 'otpl' in --exporter (choose from otlp, console, jsonl, none)",
    ),
    (["--metrics-exporter", "prometheus"], {}, "unknown exporter 'prometheus' in --metrics-exporter"),
    ([], {"OTEL_TRACES_EXPORTER": "zipkin"}, "unknown exporter 'zipkin' in OTEL_TRACES_EXPORTER"),
    (
        ["--endpoint", "127.0.0.1:4317"],
        {},
        "malformed endpoint '127.0.0.1:4317' in --endpoint: it needs an http",
    ),
    (["--endpoint", "http://127.0.0.1:99999"], {}, "its port is not a number in 0-65535"),
    (["--protocol", "udp"], {}, "argument --protocol: invalid choice: 'udp'"),
    (["--headers", "secret-token"], {}, "malformed headers in --headers: expected key=value pairs"),
    (["--callback", "no_such_module_xyz:Cb"], {}, "cannot import callback module 'no_such_module_xyz'"),
    (["--callback", "json:dumps"], {}, "json:dumps is not a callback class"),
    (["--callback", "json"], {}, "bad callback 'json' in --callback (expected module:Class"),
    (["--to", "honeycomb"], {}, "--to honeycomb needs an API key: set HONEYCOMB_API_KEY"),
    (
        [],
        {"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": "nan"},
        "bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT 'nan' (expected seconds >= 0",
    ),
    ([], {"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": "inf"}, "bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT 'inf'"),
    ([], {"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": "-1"}, "bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT '-1'"),
    ([], {"RLM_INSTRUMENT_SHUTDOWN_TIMEOUT": "5s"}, "bad RLM_INSTRUMENT_SHUTDOWN_TIMEOUT '5s'"),
    # Values that passed validation but disabled telemetry (or warned) only at run time.
    (["--callback", "cbmod:NeedsArgs"], {}, "cannot instantiate callback cbmod:NeedsArgs (TypeError: "),
    (["--callback", "cbmod:Raises"], {}, "cannot instantiate callback cbmod:Raises (ValueError: no)"),
    (["--jsonl", "/"], {}, "rlm-instrument: error: --jsonl '/' is a directory (give a file name"),
    (["--jsonl", "/proc/x.jsonl"], {}, "cannot write --jsonl '/proc/x.jsonl': "),
    (["--jsonl", "no-such-dir/x.jsonl"], {}, "/no-such-dir' of --jsonl '"),
    (["--jsonl", ""], {}, "empty path in --jsonl"),
    ([], {"RLM_INSTRUMENT_JSONL": "/proc/y.jsonl"}, "cannot write RLM_INSTRUMENT_JSONL '/proc/y.jsonl'"),
    (["--exporter", ""], {}, "empty exporter list in --exporter"),
    ([], {"RLM_CAPTURE_MAX_LENGTH": "abc"}, "bad RLM_CAPTURE_MAX_LENGTH 'abc' (expected a whole number"),
    ([], {"RLM_CAPTURE_MAX_LENGTH": "-1"}, "bad RLM_CAPTURE_MAX_LENGTH '-1'"),
    ([], {"RLM_INSTRUMENT_PROPAGATE": "yes"}, "bad RLM_INSTRUMENT_PROPAGATE 'yes' (expected 1 or 0)"),
    ([], {"RLM_DEMO_TOKEN_DELAY": "fast"}, "bad RLM_DEMO_TOKEN_DELAY 'fast'"),
    ([], {"RLM_EXPORT_TOKEN_EVENTS": "sometimes"}, "bad RLM_EXPORT_TOKEN_EVENTS 'sometimes'"),
    ([], {"OTEL_PROPAGATORS": "tracecontext,bogus"}, "unknown propagator 'bogus' in OTEL_PROPAGATORS"),
    ([], {"OTEL_TRACES_SAMPLER": "sometimes"}, "unknown sampler 'sometimes' in OTEL_TRACES_SAMPLER"),
    (
        [],
        {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
        "unknown compression 'zstd' in OTEL_EXPORTER_OTLP_COMPRESSION (choose from gzip, deflate, none)",
    ),
    ([], {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "abc"}, "bad OTEL_EXPORTER_OTLP_TRACES_TIMEOUT 'abc'"),
    (
        [],
        {"RLM_STREAM_USAGE": "sometimes"},
        "bad RLM_STREAM_USAGE='sometimes' (use 1 to turn stream usage on",
    ),
    # Credentials are never echoed: userinfo and query strings of URLs, header values.
    (
        [],
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:SECRETPW@127.0.0.1:abc"},
        "malformed endpoint 'http://***@127.0.0.1:abc' in OTEL_EXPORTER_OTLP_ENDPOINT: its port is not a number",
    ),
    (
        ["--endpoint", "u:SECRETPW@127.0.0.1:4317/?key=SECRETPW"],
        {},
        "malformed endpoint '***@127.0.0.1:4317/?***' in --endpoint: it needs an http",
    ),
    (
        ["--headers", "x-team=a,authorization=Bearer SECRETPW;v2"],
        {},
        "malformed headers in --headers: expected key=value pairs separated by commas (item 2 is not",
    ),
    (
        [],
        {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=SECRETPW\\"},
        "malformed headers in OTEL_EXPORTER_OTLP_TRACES_HEADERS: expected key=value pairs",
    ),
]


@pytest.mark.parametrize(
    ("flags", "env", "message"), BAD_INPUT, ids=[" ".join(c[0]) or str(c[1]) for c in BAD_INPUT]
)
def test_bad_input_is_one_line_exit_2_and_nothing_starts(
    flags: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    (tmp_path / "cbmod.py").write_text(
        "from rlm_toolkit.callbacks import BaseCallback\n"
        "class NeedsArgs(BaseCallback):\n    def __init__(self, sink):\n        pass\n"
        "class Raises(BaseCallback):\n    def __init__(self):\n        raise ValueError('no')\n"
    )
    result = cli(
        *flags,
        sys.executable,
        "-c",
        f"open({str(marker)!r}, 'w')",
        env=env_without_telemetry(**env),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rlm-instrument: error: ")
    assert message in result.stderr
    assert "SECRETPW" not in result.stderr
    assert not marker.exists()


def test_missing_and_unknown_commands() -> None:
    missing = cli("--service-name", "x")
    assert (missing.returncode, missing.stderr) == (
        2,
        "rlm-instrument: error: missing command to run (e.g. rlm-instrument python app.py)\n",
    )
    unknown = cli("no-such-program-xyz", "--flag")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "rlm-instrument: error: command 'no-such-program-xyz' not found on PATH "
        "(check the name, or give its full path)\n",
    )


def test_version_and_help_document_every_variable() -> None:
    from rlm_toolkit import __version__

    assert cli("--version").stdout == f"rlm-instrument {__version__}\n"
    help_text = " ".join(cli("--help").stdout.split())
    for var in (
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "HONEYCOMB_API_KEY",
        "RLM_INSTRUMENT_JSONL",
        "RLM_INSTRUMENT_CALLBACKS",
        "RLM_INSTRUMENT_PROPAGATE",
        "RLM_STREAM_USAGE",
        "OTEL_SEMCONV_STABILITY_OPT_IN",
    ):
        assert var in help_text


# -- exit status and flushing ------------------------------------------------------------------
@pytest.mark.parametrize(("arg", "status"), [("0", 0), ("3", 3), ("kill", -signal.SIGKILL)])
def test_exit_status_is_passed_through(app: Path, arg: str, status: int) -> None:
    result = cli(sys.executable, str(app), arg)
    assert result.returncode == status
    assert result.stdout == "app ran\n"
    if status >= 0:  # the tree is printed at exit, including sys.exit(3)
        assert TREE in result.stderr and "└── work" in result.stderr


def test_unhandled_exception_still_flushes(app: Path) -> None:
    result = cli(sys.executable, str(app), "raise")
    assert result.returncode == 1
    assert "RuntimeError: app failed" in result.stderr
    assert result.stderr.index("RuntimeError") < result.stderr.index(TREE)


def test_sigterm_flushes_then_dies_of_sigterm(tmp_path: Path) -> None:
    app = tmp_path / "sleeper.py"
    app.write_text(
        "import time\nfrom opentelemetry import trace\n"
        "with trace.get_tracer('a').start_as_current_span('before-term'):\n    pass\n"
        "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    out = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlm_toolkit", "--jsonl", str(out), sys.executable, str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_telemetry(),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # exec: this pid is the app itself
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 6
    assert "└── before-term" in stderr
    assert [s.name for s in read_spans_jsonl(out)] == ["before-term"]


# -- the bootstrap: chaining, no leak to grandchildren, entry styles --------------------------
def test_chains_existing_sitecustomize_and_does_not_leak(tmp_path: Path) -> None:
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("import sys\nsys.stderr.write('USER-SITECUSTOMIZE\\n')\n")
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = env_without_telemetry(PYTHONPATH=str(user_site))
    result = cli(sys.executable, str(script), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["CHILD True", f"GRANDCHILD False {user_site} None"]
    # The user's sitecustomize runs in every process: the CLI's own, the app's, the grandchild's.
    assert result.stderr.count("USER-SITECUSTOMIZE") == 3

    propagated = cli("--propagate", sys.executable, str(script), env=env)
    child, grandchild = propagated.stdout.splitlines()
    assert child == "CHILD True"
    assert grandchild.startswith("GRANDCHILD True ") and grandchild.endswith(" parent")
    assert propagated.stderr.count("USER-SITECUSTOMIZE") == 3


def test_python_dash_m_and_console_scripts(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(APP)
    result = cli(sys.executable, "-m", "mypkg", "0", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "app ran\n")
    assert "mypkg  1 span" in result.stderr  # service.name defaults to the module

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "my-tool"
    tool.write_text(f"#!{sys.executable}\n{APP}")
    tool.chmod(0o755)
    env = env_without_telemetry(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = cli("my-tool", "3", env=env)
    assert (result.returncode, result.stdout) == (3, "app ran\n")
    assert "my-tool  1 span" in result.stderr and "└── work" in result.stderr


def test_callback_is_instantiated_in_the_app(tmp_path: Path) -> None:
    (tmp_path / "mycallbacks.py").write_text(
        "import os\nfrom rlm_toolkit.callbacks import BaseCallback\n"
        "class Marker(BaseCallback):\n"
        "    def __init__(self):\n"
        "        open('callback-pid', 'w').write(str(os.getpid()))\n"
    )
    result = cli(
        "--callback",
        "mycallbacks:Marker",
        sys.executable,
        "-c",
        "import os; print(os.getpid())",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "callback-pid").read_text() == result.stdout.strip()


def test_jsonl_only_prints_no_tree(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    result = cli("--exporter", "jsonl", "--jsonl", str(out), sys.executable, str(app))
    assert (result.returncode, result.stdout, result.stderr) == (0, "app ran\n", "")
    (span,) = read_spans_jsonl(out)
    assert (span.name, span.resource.attributes["service.name"]) == ("work", "app")


UNTOUCHED_PROBE = (
    "import os, sys\n"
    "from opentelemetry import trace\n"
    "with trace.get_tracer('app').start_as_current_span('work'):\n"
    "    pass\n"
    "print(type(trace.get_tracer_provider()).__name__, 'openai' in sys.modules,\n"
    "      os.environ.get('PYTHONPATH'), os.environ.get('OTEL_SERVICE_NAME'),\n"
    "      sorted(k for k in os.environ if k.startswith('RLM_')))\n"
)


def test_otel_sdk_disabled_runs_the_app_untouched(tmp_path: Path) -> None:
    from rlm_toolkit.auto.cli import BOOTSTRAP_DIR

    app = tmp_path / "probe.py"
    app.write_text(UNTOUCHED_PROBE)
    untouched = "ProxyTracerProvider False None None []\n"
    # Through the CLI: no bootstrap, no variables; flags that would need more (a Honeycomb key)
    # are not an error, because nothing will be exported anyway.
    env = env_without_telemetry(OTEL_SDK_DISABLED="TRUE")
    result = cli("--to", "honeycomb", "--jsonl", str(tmp_path / "x.jsonl"), sys.executable, str(app), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, untouched, "")
    assert not (tmp_path / "x.jsonl").exists()
    # The bootstrap honours it too (e.g. a --propagate grandchild whose parent disabled the SDK).
    env = env_without_telemetry(OTEL_SDK_DISABLED="true", PYTHONPATH=BOOTSTRAP_DIR)
    result = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("ProxyTracerProvider False ")
    # Control: without the switch the same bootstrap does set up telemetry (SDK provider; openai
    # is instrumented when the app imports it, which this one does not).
    env.pop("OTEL_SDK_DISABLED")
    result = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TracerProvider False ")
    assert TREE in result.stderr


SIGNALS_APP = """
from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LogRecord
with trace.get_tracer("app").start_as_current_span("work"):
    metrics.get_meter("app").create_counter("app.requests").add(2, {"route": "/x"})
    _logs.get_logger("app").emit(LogRecord(body="hello log", event_name="app.event"))
print("app ran", flush=True)
"""


def test_console_exporter_prints_metrics_and_logs_then_the_tree(tmp_path: Path) -> None:
    import json

    app = tmp_path / "signals.py"
    app.write_text(SIGNALS_APP)
    result = cli("--exporter", "console", sys.executable, str(app))
    assert (result.returncode, result.stdout) == (0, "app ran\n"), result.stderr
    head, tree = result.stderr.split(TREE)
    # Before the tree: the log record (printed as it happened), then the metrics (at exit), as
    # the SDK's console exporters print them: whole JSON documents, not interleaved.
    decoder, documents, at = json.JSONDecoder(), [], 0
    while head[at:].strip():
        at += len(head[at:]) - len(head[at:].lstrip())
        document, at = decoder.raw_decode(head, at)
        documents.append(document)
    log, metric_data = documents
    assert (log["body"], log["event_name"]) == ("hello log", "app.event")
    assert log["resource"]["attributes"]["service.name"] == "signals"
    (resource_metrics,) = metric_data["resource_metrics"]
    assert resource_metrics["resource"]["attributes"]["service.name"] == "signals"
    (scope_metrics,) = resource_metrics["scope_metrics"]
    (metric,) = scope_metrics["metrics"]
    assert metric["name"] == "app.requests"
    (point,) = metric["data"]["data_points"]
    assert (point["value"], point["attributes"]) == (2, {"route": "/x"})
    # The tree still ends the output.
    lines = tree.strip().splitlines()
    assert lines[1].startswith("└── work ")
    assert lines[-1] == "Σ 0 LLM calls · 0 in / 0 out tokens"
    help_text = " ".join(cli("--help").stdout.split())
    assert (
        "console, all on stderr: spans (with their events) as a tree at exit; metrics and events/log "
        in help_text
    )


def test_bad_shutdown_timeout_reaching_the_bootstrap_uses_the_default(app: Path) -> None:
    """The CLI rejects it; if it reaches the bootstrap anyway (the environment changed), the app
    runs instrumented and exits cleanly -- before, nan/inf made the exit hook raise."""
    from rlm_toolkit.auto.cli import BOOTSTRAP_DIR

    for value in ("nan", "inf", "-3"):
        env = env_without_telemetry(PYTHONPATH=BOOTSTRAP_DIR, RLM_INSTRUMENT_SHUTDOWN_TIMEOUT=value)
        result = subprocess.run(
            [sys.executable, str(app)], capture_output=True, text=True, env=env, timeout=60
        )
        assert (result.returncode, result.stdout) == (0, "app ran\n"), result.stderr
        assert result.stderr.startswith(TREE) and "└── work" in result.stderr
        assert "Traceback" not in result.stderr and "rlm-instrument:" not in result.stderr


def test_callback_module_is_imported_once_to_validate_and_once_in_the_app(tmp_path: Path) -> None:
    (tmp_path / "sidefx.py").write_text(
        "import os\nfrom rlm_toolkit.callbacks import BaseCallback\n"
        "open('imports', 'a').write(f'{os.getpid()}\\n')\n"
        "class Cb(BaseCallback):\n    pass\n"
    )
    result = cli(
        "--callback", "sidefx:Cb", sys.executable, "-c", "import os; print(os.getpid())", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    # exec keeps the pid: both imports happened in this one process, the second in the app.
    assert (tmp_path / "imports").read_text().splitlines() == [result.stdout.strip()] * 2
    help_text = " ".join(cli("--help").stdout.split())
    assert (
        "The module is imported and the class instantiated (with no arguments) once by rlm-instrument "
        "itself to validate them before the program starts, then again in the program" in help_text
    )


SLEEPER = (
    "import time\nfrom opentelemetry import trace\n"
    "with trace.get_tracer('a').start_as_current_span('before-signal'):\n    pass\n"
    "print('ready', flush=True)\ntime.sleep(60)\n"
)


def _status_after(signum: int, command: list[str]) -> tuple[int, str]:
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_telemetry(),
        # A background job of a non-interactive shell inherits SIGINT ignored: the app must see
        # Ctrl-C as a terminal user's app does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, stderr


@pytest.mark.parametrize("outputs", [[], ["--exporter", "none"], ["--jsonl", "run.jsonl"]], ids=str)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_exit_status_is_as_uninstrumented_and_telemetry_is_flushed(
    tmp_path: Path, signum: signal.Signals, outputs: list[str]
) -> None:
    app = tmp_path / "sleeper.py"
    app.write_text(SLEEPER)
    plain, _ = _status_after(signum, [sys.executable, str(app)])
    outputs = [str(tmp_path / o) if o.endswith(".jsonl") else o for o in outputs]
    status, stderr = _status_after(
        signum, [sys.executable, "-m", "rlm_toolkit", *outputs, sys.executable, str(app)]
    )
    assert (status, plain) == (-signum, -signum)
    if not outputs:
        assert "└── before-signal" in stderr
    if "--jsonl" in outputs:
        assert [s.name for s in read_spans_jsonl(outputs[-1])] == ["before-signal"]


OPENAI_LATER = """
import sys
print("before", "openai" in sys.modules, flush=True)
import openai
from rlm_toolkit.testing import OpenAIServer
with OpenAIServer() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
"""


def test_openai_is_imported_only_by_apps_that_import_it(tmp_path: Path) -> None:
    """Importing openai in the bootstrap cost every instrumented process ~1 s of start-up; now
    the instrumentation waits for the app's own import, and still traces the calls."""
    plain = cli(sys.executable, "-c", "import sys; print('openai' in sys.modules)")
    assert (plain.returncode, plain.stdout) == (0, "False\n"), plain.stderr
    app = tmp_path / "later.py"
    app.write_text(OPENAI_LATER)
    out = tmp_path / "run.jsonl"
    later = cli("--exporter", "jsonl", "--jsonl", str(out), sys.executable, str(app))
    assert (later.returncode, later.stdout) == (0, "before False\n"), later.stderr
    assert [span.name for span in read_spans_jsonl(out)] == ["chat gpt-4o"]


@pytest.mark.parametrize("flag", ["-I", "-E", "-S", "-IS", "-bE"])
def test_python_options_that_skip_the_bootstrap_are_named_once(flag: str) -> None:
    result = cli(sys.executable, flag, "-c", "print('ran')")
    assert (result.returncode, result.stdout) == (0, "ran\n")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rlm-instrument: warning: python -")
    assert "skips the bootstrap" in result.stderr and "runs without telemetry" in result.stderr


def test_ordinary_python_options_do_not_warn() -> None:
    result = cli(sys.executable, "-u", "-W", "ignore", "-c", "import sys; print('ran')")
    assert (result.returncode, result.stdout) == (0, "ran\n")
    assert result.stderr == ""
