"""Checks the CLI runs before it starts anything, beyond what :func:`_config.resolve` parses.

Each one rejects, with a one-line :class:`ConfigError`, a value that would otherwise be found
only at run time -- where the instrumented process can merely warn (or, worse, silently run
without telemetry): our own ``RLM_*`` variables, the ``OTEL_*`` values the OTel SDK and its
OTLP exporters parse for themselves, the JSONL file, and the callback classes. They run in the
CLI only: the instrumented process does not pay for them at start-up.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping

from opentelemetry.environment_variables import OTEL_PROPAGATORS
from opentelemetry.sdk.environment_variables import OTEL_TRACES_SAMPLER

from rlm_toolkit import environment_variables as ev
from rlm_toolkit.auto._child import load_callback_class
from rlm_toolkit.auto._config import SIGNALS, ConfigError, Settings, signal_var

COMPRESSIONS = ("gzip", "deflate", "none")
_FLAGS = ("0", "1")
_BOOLEANS = ("", "0", "1", "true", "false", "yes", "no", "on", "off")


def _positive_int(text: str) -> bool:
    return text.strip().isdigit() and int(text) > 0


def _seconds(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value >= 0


# Our variables: name -> (accepts, what to write instead). Empty means unset everywhere.
_OURS: dict[str, tuple[Callable[[str], bool], str]] = {
    ev.RLM_CAPTURE_MAX_LENGTH: (_positive_int, "a whole number of characters > 0, e.g. 16384"),
    ev.RLM_INSTRUMENT_PROPAGATE: (lambda t: t.strip() in _FLAGS, "1 or 0"),
    ev.RLM_TOOLKIT_STRICT: (lambda t: t.strip() in _FLAGS, "1 or 0"),
    ev.RLM_DEMO_TOKEN_DELAY: (_seconds, "seconds >= 0, e.g. 0.02"),
    ev.RLM_EXPORT_TOKEN_EVENTS: (lambda t: t.strip().lower() in _BOOLEANS, "1 or 0"),
}


def _entry_point_names(group: str) -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group=group)}


def check_environment(env: Mapping[str, str]) -> None:
    """Every ``RLM_*`` variable we read, and the ``OTEL_*`` values the SDK would reject or
    warn about (each warning once per exporter: twice in a process with two OTLP signals)."""
    for name, (accepts, expected) in _OURS.items():
        value = env.get(name, "")
        if value.strip() and not accepts(value):
            raise ConfigError(f"bad {name} {value!r} (expected {expected})")
    for var in ("OTEL_EXPORTER_OTLP_COMPRESSION", *(signal_var(s, "COMPRESSION") for s in SIGNALS)):
        value = env.get(var, "")
        if value.strip() and value.strip().lower() not in COMPRESSIONS:
            raise ConfigError(
                f"unknown compression {value!r} in {var} (choose from {', '.join(COMPRESSIONS)})"
            )
    for var in ("OTEL_EXPORTER_OTLP_TIMEOUT", *(signal_var(s, "TIMEOUT") for s in SIGNALS)):
        value = env.get(var, "")
        if value.strip() and not _seconds(value):
            raise ConfigError(f"bad {var} {value!r} (expected seconds >= 0, e.g. 10)")
    propagators = env.get(OTEL_PROPAGATORS, "")
    if propagators.strip():
        known = _entry_point_names("opentelemetry_propagator") | {"none"}
        for name in (p.strip() for p in propagators.split(",")):
            if name and name not in known:
                raise ConfigError(
                    f"unknown propagator {name!r} in {OTEL_PROPAGATORS} (installed: {', '.join(sorted(known))})"
                )
    sampler = env.get(OTEL_TRACES_SAMPLER, "").strip().lower()
    if sampler:
        known = _entry_point_names("opentelemetry_traces_sampler")
        if sampler not in known:
            raise ConfigError(
                f"unknown sampler {sampler!r} in {OTEL_TRACES_SAMPLER} (choose from {', '.join(sorted(known))})"
            )


def check_writable_file(path: str, source: str) -> None:
    """``path`` can be appended to: its directory exists (never created for the user: a typo
    would scatter files), it is not a directory, and opening it for appending works (as root,
    permission bits alone say nothing: ``/proc`` refuses new files anyway)."""
    full = os.path.abspath(path)
    directory = os.path.dirname(full)
    if not os.path.isdir(directory):
        raise ConfigError(f"directory {directory!r} of {source} {path!r} does not exist (create it first)")
    if os.path.isdir(full):
        raise ConfigError(f"{source} {path!r} is a directory (give a file name, e.g. run.jsonl)")
    existed = os.path.exists(full)
    try:
        with open(full, "ab"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write {source} {path!r}: {exc.strerror or exc} (choose a writable path)"
        ) from None
    if not existed:
        # Leave no trace of the check (the exporter creates the file on first write); a file
        # someone removed meanwhile is just as good.
        with contextlib.suppress(OSError):
            os.remove(full)


def check_settings(settings: Settings, jsonl_source: str) -> None:
    """The JSONL file is writable and every callback class can be made with no arguments
    (the instrumented process instantiates it exactly so)."""
    if settings.jsonl_path:
        check_writable_file(settings.jsonl_path, jsonl_source)
    for spec in settings.callbacks:
        cls = load_callback_class(spec)
        try:
            cls()
        except Exception as exc:
            raise ConfigError(
                f"cannot instantiate callback {spec} ({type(exc).__name__}: {exc}); "
                "a --callback class must be constructible with no arguments"
            ) from None
