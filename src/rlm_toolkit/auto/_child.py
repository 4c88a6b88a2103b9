"""What runs inside the instrumented process (called from the ``sitecustomize`` bootstrap).

Configure providers from the environment, make them global, instrument ``openai`` and
``anthropic`` (when the app imports one: processes that never do skip the import cost), arrange a
bounded flush at exit (normal exit, ``sys.exit``, unhandled exception, Ctrl-C, SIGTERM, SIGHUP), then restore
the environment the CLI changed so grandchild processes are not instrumented unless
``--propagate`` was given.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import MutableMapping
from types import FrameType
from typing import Any

from rlm_toolkit import environment_variables as ev
from rlm_toolkit._safety import contain
from rlm_toolkit.auto._config import ConfigError, Settings, redact_text, resolve, sdk_disabled
from rlm_toolkit.auto._providers import Telemetry, build_telemetry

PREFIX = "rlm-instrument: "


def _warn(message: str) -> None:
    sys.stderr.write(f"{PREFIX}{redact_text(message)}\n")


def load_callback_class(spec: str) -> type:
    """Import ``module:Class`` (the current directory is importable) and check it is a callback."""
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import callback module {module_name!r} ({type(exc).__name__}: {exc}); "
            "check --callback module:Class and that the module is on PYTHONPATH or in the current directory"
        ) from None
    finally:
        if added:
            sys.path.remove(cwd)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"module {module_name!r} has no {attr!r} (check --callback {spec})")
    if not isinstance(obj, type) or not _is_callback_class(obj):
        raise ConfigError(
            f"{spec} is not a callback class (subclass rlm_toolkit.callbacks.BaseCallback or AsyncBaseCallback)"
        )
    return obj


def _is_callback_class(cls: type) -> bool:
    try:
        from rlm_toolkit.callbacks._base import EVENT_METHODS
    except ImportError:  # pragma: no cover - the callbacks package is part of the distribution
        return True
    return any(callable(getattr(cls, method, None)) for method in EVENT_METHODS)


def _restore_environment(env: MutableMapping[str, str]) -> None:
    saved = env.pop(ev.RLM_INSTRUMENT_RESTORE, None)
    if saved is None:
        return
    try:
        original: dict[str, str | None] = json.loads(saved)
    except ValueError:
        return
    for name, value in original.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def _instrument(telemetry: Telemetry, settings: Settings) -> None:
    callbacks = [load_callback_class(spec)() for spec in settings.callbacks]
    try:
        from rlm_toolkit._instrument import instrument
    except ImportError as exc:
        _warn(
            f"LLM SDK instrumentation unavailable ({exc}); telemetry is configured but "
            "openai/anthropic calls are not traced"
        )
        return
    kwargs: dict[str, Any] = {
        "tracer_provider": telemetry.tracer_provider,
        "meter_provider": telemetry.meter_provider,
        "logger_provider": telemetry.logger_provider,
    }
    if settings.capture_content is not None:
        kwargs["capture_content"] = settings.capture_content
    if settings.stream_usage:
        kwargs["stream_usage"] = True
    if callbacks:
        kwargs["callbacks"] = callbacks
    instrument(**kwargs)


#: The SDKs whose first import instruments (``instrument()`` covers both; the other one, if
#: imported later, is patched on its own import by the instrumentation's deferred targets).
SDKS = ("openai", "anthropic")


def _instrument_when_imported(telemetry: Telemetry, settings: Settings) -> None:
    """Instrument once the app imports ``openai`` or ``anthropic`` (right after its ``__init__``
    ran): importing them here cost every process ~1 s of start-up, most of all those that never
    use them (a ``--propagate``d build tool, a shell script's python -c). Once, whichever SDK
    comes first."""
    import wrapt

    done: list[bool] = []

    def on_import(module: object) -> None:
        if done:
            return
        done.append(True)
        try:
            _instrument(telemetry, settings)
        except ConfigError as exc:
            _warn(str(exc))
        except Exception as exc:
            _warn(f"LLM SDK instrumentation failed ({type(exc).__name__}: {exc}); its calls are not traced")
            contain("rlm-instrument deferred instrumentation", exc)

    for name in SDKS:
        wrapt.register_post_import_hook(on_import, name)


def _install_exit_hooks(telemetry: Telemetry, timeout: float) -> None:
    atexit.register(_flush_at_exit, telemetry, timeout)
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Flush, then die of the same signal so the parent sees the real cause of death.
        _end_open_streams()
        telemetry.shutdown(timeout)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in _FLUSH_SIGNALS:
        # Someone (an existing sitecustomize) owns it, or it is ignored (nohup): leave it alone.
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, on_signal)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: _after_fork_in_child(telemetry, timeout, on_signal))


#: How long a forked multiprocessing worker may spend flushing when it exits normally.
FORK_CHILD_FLUSH_S = 2.0


def _after_fork_in_child(telemetry: Telemetry, timeout: float, handler: Any) -> None:
    """A forked child shares the parent's providers (the SDK restarts their batch threads).
    A multiprocessing worker among them gets :func:`_in_worker` (a plain ``os.fork`` child keeps
    our signal handlers and ``atexit``, like any process)."""
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        # Process._bootstrap clears the finalizers it inherited, then runs the after-fork hooks.
        mp_util.register_after_fork(telemetry, lambda t: _in_worker(t, handler))


def _in_worker(telemetry: Telemetry, handler: Any) -> None:
    """In a forked multiprocessing worker:

    * its signal handlers go back to the default: ``multiprocessing.Pool.terminate`` SIGTERMs
      its workers and, while they die, may start replacements it never signals; a worker that
      spent time flushing widened that race until ``terminate()`` hung. Spans still queued in a
      terminated worker are lost, as without us;
    * a worker that ends normally leaves by ``os._exit`` (no ``atexit``), after running
      multiprocessing's finalizers: one of them flushes its telemetry (bounded).
    """
    import multiprocessing.util as mp_util

    for signum in _FLUSH_SIGNALS:
        if signal.getsignal(signum) is handler:
            signal.signal(signum, signal.SIG_DFL)
    mp_util.Finalize(None, telemetry.shutdown, args=(FORK_CHILD_FLUSH_S,), exitpriority=0)


#: Signals whose default action kills the process without running ``atexit``: caught to flush
#: first. SIGINT is Python's KeyboardInterrupt, which does run ``atexit`` (see _flush_at_exit).
_FLUSH_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _flush_at_exit(telemetry: Telemetry, timeout: float) -> None:
    telemetry.shutdown(timeout)
    if isinstance(getattr(sys, "last_exc", None) or getattr(sys, "last_value", None), KeyboardInterrupt):
        # Python exits by SIGINT (status 130) after an unhandled KeyboardInterrupt only if no
        # string was exec'd/eval'd since: a lazy import at exit defining a dataclass or a
        # namedtuple (as the tree's renderer does) resets that and the status became 1. Die of
        # SIGINT ourselves, as Python would have; only atexit handlers registered before this
        # bootstrap (logging's) are skipped, and the standard streams are flushed first.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed stream must not keep the status wrong
                continue
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def _end_open_streams() -> None:
    """Streams still open end (``abandoned``) before the flush; ``atexit`` does not run when a
    signal kills the process. Only if streams were ever made: importing costs start-up time."""
    reaper = sys.modules.get("rlm_toolkit.genai._reaper")
    if reaper is not None:
        try:
            reaper.end_open(None)
        except Exception as exc:
            contain("end open streams on signal", exc)


def bootstrap() -> Telemetry | None:
    """Set up telemetry for this process from the environment; never raises.

    Does nothing (returns None) when ``OTEL_SDK_DISABLED=true``.
    """
    env = os.environ
    telemetry: Telemetry | None = None
    try:
        if sdk_disabled(env):  # the standard off switch: no providers, no instrumentation
            return None
        settings = resolve(env, lenient_timeout=True)
        telemetry = build_telemetry(settings)
        from opentelemetry import _logs, metrics, trace

        trace.set_tracer_provider(telemetry.tracer_provider)
        metrics.set_meter_provider(telemetry.meter_provider)
        _logs.set_logger_provider(telemetry.logger_provider)
        _install_exit_hooks(telemetry, settings.shutdown_timeout)
        if settings.callbacks or any(name in sys.modules for name in SDKS):
            # Callbacks are attached by instrument() and may consume any GenAI spans: now.
            _instrument(telemetry, settings)
        else:
            _instrument_when_imported(telemetry, settings)
    except ConfigError as exc:
        _warn(str(exc))
    except Exception as exc:
        _warn(f"telemetry setup failed ({type(exc).__name__}: {exc}); the app runs uninstrumented")
        contain("rlm-instrument bootstrap", exc)
    finally:
        if env.get(ev.RLM_INSTRUMENT_PROPAGATE) != "1":
            _restore_environment(env)
    return telemetry
