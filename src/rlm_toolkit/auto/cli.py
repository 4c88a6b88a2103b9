"""``rlm-instrument [options] COMMAND [ARGS...]``: run a program with openai telemetry on.

Flags become environment variables for the program (the standard ``OTEL_*`` ones where they
exist); everything is validated before the program starts; then the program replaces this
process (``exec``), so its exit status -- including death by a signal -- is passed through
unchanged. A ``sitecustomize`` bootstrap on PYTHONPATH sets up telemetry inside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_SERVICE_NAME,
)

from rlm_toolkit import environment_variables as ev
from rlm_toolkit.auto._checks import check_environment, check_settings
from rlm_toolkit.auto._config import (
    CAPTURE_VALUES,
    EXPORTERS,
    PROTOCOLS,
    ConfigError,
    check_endpoint,
    check_headers,
    parse_callback_specs,
    parse_exporters,
    redact_text,
    resolve,
    sdk_disabled,
    signal_var,
)
from rlm_toolkit.version import __version__

PROG = "rlm-instrument"
BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")
JAEGER_ENDPOINT = "http://127.0.0.1:4317"
HONEYCOMB_ENDPOINT = "https://api.honeycomb.io"
_PYTHONPATH = "PYTHONPATH"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {PROG} --help)")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {redact_text(message)}\n")
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    exporters = ", ".join(EXPORTERS)
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [options] COMMAND [ARGS...]",
        description="Run COMMAND (e.g. `python app.py`, `python -m pkg`, a console script) with OpenTelemetry "
        "tracing, metrics and events for the openai SDK -- no code change. With no endpoint and no exporter "
        "configured, a trace tree is printed on stderr when the program exits. Standard OTEL_* variables are "
        "honoured; a flag overrides the variable named in its help. OTEL_SDK_DISABLED=true runs COMMAND untouched "
        "(no telemetry, other flags ignored). OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental emits the "
        "latest GenAI convention names instead of the v1.41 ones.",
        epilog="examples:\n"
        f"  {PROG} python app.py\n"
        f"  {PROG} --to jaeger python -m mypkg\n"
        f"  {PROG} --endpoint http://127.0.0.1:4318 --protocol http/protobuf --jsonl run.jsonl myscript\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--version", action="version", version=f"{PROG} {__version__}")
    add(
        "--service-name",
        metavar="NAME",
        help=f"service.name resource attribute (env: {OTEL_SERVICE_NAME}; default: the program's name)",
    )
    add(
        "--exporter",
        metavar="LIST",
        help=f"exporters for all signals, comma-separated, from: {exporters} (env: {OTEL_TRACES_EXPORTER}, {OTEL_METRICS_EXPORTER}, {OTEL_LOGS_EXPORTER}; default: console tree for traces, or otlp when an endpoint is set). console, all on stderr: spans (with their events) as a tree at exit; metrics and events/log records as the OpenTelemetry SDK's JSON console output (metrics at exit, records as they happen)",
    )
    add("--traces-exporter", metavar="LIST", help=f"exporters for spans (env: {OTEL_TRACES_EXPORTER})")
    add("--metrics-exporter", metavar="LIST", help=f"exporters for metrics (env: {OTEL_METRICS_EXPORTER})")
    add(
        "--logs-exporter",
        metavar="LIST",
        help=f"exporters for events/log records (env: {OTEL_LOGS_EXPORTER})",
    )
    add(
        "--endpoint",
        metavar="URL",
        help=f"OTLP endpoint, e.g. http://127.0.0.1:4317 (env: {OTEL_EXPORTER_OTLP_ENDPOINT}); implies --exporter otlp unless exporters are given",
    )
    add(
        "--protocol",
        choices=PROTOCOLS,
        help=f"OTLP protocol (env: {OTEL_EXPORTER_OTLP_PROTOCOL}; default: http/protobuf)",
    )
    add("--headers", metavar="K=V,...", help=f"OTLP request headers (env: {OTEL_EXPORTER_OTLP_HEADERS})")
    add(
        "--capture-content",
        choices=CAPTURE_VALUES,
        metavar="MODE",
        help=f"export prompt/completion text: {', '.join(CAPTURE_VALUES)} (env: {ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT}; default: false)",
    )
    add(
        "--to",
        choices=("jaeger", "honeycomb"),
        help=f"preset: jaeger = OTLP gRPC to {JAEGER_ENDPOINT} (traces; unless --endpoint); honeycomb = OTLP http/protobuf to {HONEYCOMB_ENDPOINT} with the key from {ev.HONEYCOMB_API_KEY} (metrics dataset: {ev.HONEYCOMB_DATASET} or the service name)",
    )
    add(
        "--jsonl",
        metavar="PATH",
        help=f"also append spans, metrics and events to PATH as OTLP/JSON lines (env: {ev.RLM_INSTRUMENT_JSONL})",
    )
    add(
        "--callback",
        metavar="MODULE:CLASS",
        action="append",
        default=[],
        help="instantiate this callback class in the program and attach it (repeatable; env: "
        f"{ev.RLM_INSTRUMENT_CALLBACKS}). The module is imported and the class instantiated (with no arguments) "
        f"once by {PROG} itself to validate them before the program starts, then again in the program: keep "
        "side effects out of the import and the constructor",
    )
    add(
        "--propagate",
        action="store_true",
        help=f"instrument Python processes the program starts, too (env: {ev.RLM_INSTRUMENT_PROPAGATE}=1)",
    )
    add(
        "--stream-usage",
        action="store_true",
        help="ask for token usage on streamed chat calls that do not, without changing the chunks "
        f"the program sees (env: {ev.RLM_STREAM_USAGE}=1)",
    )
    add("command", nargs=argparse.REMAINDER, help="the program to run and its arguments")
    return parser


def default_service_name(command: Sequence[str]) -> str:
    """``python app.py`` -> ``app``; ``python -m pkg.mod`` -> ``pkg.mod``; ``tool`` -> ``tool``."""
    program = os.path.basename(command[0])
    if program.startswith("python"):
        args = list(command[1:])
        for i, arg in enumerate(args):
            if arg == "-m" and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith("-m") and len(arg) > 2:
                return arg[2:]
            if arg == "-c":
                return "python"
            if not arg.startswith("-"):
                return os.path.splitext(os.path.basename(arg))[0] or program
    return program


def _resolve_command(command: Sequence[str], env: Mapping[str, str]) -> str:
    name = command[0]
    path = shutil.which(name, path=env.get("PATH", os.defpath))
    if path is None:
        if os.sep in name:
            _fail(f"command {name!r} not found or not executable (check the path)")
        _fail(f"command {name!r} not found on PATH (check the name, or give its full path)")
    return path


def child_environment(args: argparse.Namespace, base: Mapping[str, str]) -> dict[str, str]:
    """The program's environment: ``base`` plus the flags, plus the bootstrap on PYTHONPATH."""
    changes: dict[str, str] = {}
    if args.to == "jaeger":
        changes[OTEL_EXPORTER_OTLP_ENDPOINT] = args.endpoint or JAEGER_ENDPOINT
        changes[OTEL_EXPORTER_OTLP_PROTOCOL] = args.protocol or "grpc"
        # Jaeger stores traces only.
        changes.update(
            {OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none"}
        )
    elif args.to == "honeycomb":
        key = base.get(ev.HONEYCOMB_API_KEY, "").strip()
        if not key:
            _fail(f"--to honeycomb needs an API key: set {ev.HONEYCOMB_API_KEY} in the environment")
        changes[OTEL_EXPORTER_OTLP_ENDPOINT] = args.endpoint or HONEYCOMB_ENDPOINT
        changes[OTEL_EXPORTER_OTLP_PROTOCOL] = args.protocol or "http/protobuf"
        extra = f",{args.headers}" if args.headers else ""
        changes[OTEL_EXPORTER_OTLP_HEADERS] = f"x-honeycomb-team={key}{extra}"
        service = args.service_name or base.get(OTEL_SERVICE_NAME) or default_service_name(args.command)
        dataset = base.get(ev.HONEYCOMB_DATASET) or service
        changes[signal_var("metrics", "HEADERS")] = (
            f"x-honeycomb-team={key},x-honeycomb-dataset={dataset}{extra}"
        )
        changes.update(
            {OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp", OTEL_LOGS_EXPORTER: "otlp"}
        )
    if args.endpoint and not args.to:
        changes[OTEL_EXPORTER_OTLP_ENDPOINT] = check_endpoint(args.endpoint, "--endpoint")
    if args.protocol and not args.to:
        changes[OTEL_EXPORTER_OTLP_PROTOCOL] = args.protocol
    if args.headers and args.to != "honeycomb":
        changes[OTEL_EXPORTER_OTLP_HEADERS] = check_headers(args.headers, "--headers")
    if args.exporter is not None:  # an empty value is an error, not "unset"
        value = ",".join(parse_exporters(args.exporter, "--exporter"))
        changes.update({OTEL_TRACES_EXPORTER: value, OTEL_METRICS_EXPORTER: value, OTEL_LOGS_EXPORTER: value})
    for flag, var in (
        ("traces_exporter", OTEL_TRACES_EXPORTER),
        ("metrics_exporter", OTEL_METRICS_EXPORTER),
        ("logs_exporter", OTEL_LOGS_EXPORTER),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[var] = ",".join(parse_exporters(value, "--" + flag.replace("_", "-")))
    if args.service_name:
        changes[OTEL_SERVICE_NAME] = args.service_name
    elif not base.get(OTEL_SERVICE_NAME) and "service.name=" not in base.get(OTEL_RESOURCE_ATTRIBUTES, ""):
        changes[OTEL_SERVICE_NAME] = default_service_name(args.command)
    if args.capture_content:
        changes[ev.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT] = args.capture_content
    if args.jsonl is not None:
        if not args.jsonl.strip():
            _fail("empty path in --jsonl (give a file name, e.g. --jsonl run.jsonl)")
        changes[ev.RLM_INSTRUMENT_JSONL] = os.path.abspath(args.jsonl)
    if args.callback:
        changes[ev.RLM_INSTRUMENT_CALLBACKS] = ",".join(
            parse_callback_specs(",".join(args.callback), "--callback")
        )
    if args.propagate:
        changes[ev.RLM_INSTRUMENT_PROPAGATE] = "1"
    if args.stream_usage:
        changes[ev.RLM_STREAM_USAGE] = "1"
    existing = base.get(_PYTHONPATH, "")
    changes[_PYTHONPATH] = BOOTSTRAP_DIR + (os.pathsep + existing if existing else "")

    env = dict(base)
    env.update(changes)
    if not args.propagate:
        env[ev.RLM_INSTRUMENT_RESTORE] = json.dumps({name: base.get(name) for name in changes})
    return env


def _bootstrap_skipped_by(command: Sequence[str]) -> str | None:
    """The interpreter option in ``python [options] ...`` that keeps our ``sitecustomize`` from
    running (-I and -E ignore PYTHONPATH, -S skips the site module), or None."""
    if not os.path.basename(command[0]).startswith("python"):
        return None
    for arg in command[1:]:
        if arg in ("-c", "-m", "-") or not arg.startswith("-") or arg.startswith("--"):
            return None  # the program (or a long option, none of which disables site) starts here
        flags = arg[1:]
        for cut in ("c", "m", "W", "X"):  # an option with its value attached: stop at it
            flags = flags.split(cut, 1)[0]
        for flag in "IES":
            if flag in flags:
                return f"-{flag}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, validate, then exec the command; returns only on error (exit status 2)."""
    args = build_parser().parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    args.command = command
    if not command:
        _fail(f"missing command to run (e.g. {PROG} python app.py)")
    if sdk_disabled(os.environ):
        # The standard off switch: run the command untouched (no bootstrap, no variables set),
        # whatever the other flags say -- e.g. a --to honeycomb in a Makefile, without a key in CI.
        _exec(command, dict(os.environ))
    try:
        env = child_environment(args, os.environ)
        check_environment(env)
        settings = resolve(env)
        jsonl_source = (
            "--jsonl"
            if args.jsonl
            else ev.RLM_INSTRUMENT_JSONL
            if os.environ.get(ev.RLM_INSTRUMENT_JSONL)
            else "the default JSONL file"
        )
        check_settings(settings, jsonl_source)
    except ConfigError as exc:
        _fail(str(exc))
    skipped = _bootstrap_skipped_by(command)
    if skipped:
        # Not an error (the program still runs, as asked), but never silent.
        sys.stderr.write(
            f"{PROG}: warning: python {skipped} skips the bootstrap (it ignores PYTHONPATH or the site "
            f"module): the program runs without telemetry; drop {skipped} or call rlm_toolkit.instrument() in it\n"
        )
    _exec(command, env)


def _exec(command: list[str], env: dict[str, str]) -> NoReturn:
    executable = _resolve_command(command, env)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(executable, command, env)
    except OSError as exc:
        _fail(f"cannot run {command[0]!r}: {exc.strerror} (check that it is an executable program)")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
