"""``rlm-instrument``: zero-code setup of OpenTelemetry providers and openai instrumentation.

``rlm_toolkit.auto.cli:main`` is the console script. ``Telemetry``/``build_telemetry`` and
``resolve`` are usable on their own to build providers from the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

from rlm_toolkit.auto._config import ConfigError, Settings, SignalSettings, resolve
from rlm_toolkit.auto._providers import Telemetry, build_telemetry

__all__ = ["ConfigError", "Settings", "SignalSettings", "Telemetry", "build_telemetry", "resolve"]
