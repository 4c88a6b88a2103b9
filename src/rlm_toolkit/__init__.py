"""rlm-toolkit: OpenTelemetry-native instrumentation and a small recursive-LM runtime for openai.

Public names are imported lazily so ``import rlm_toolkit`` (done by the ``rlm-instrument``
bootstrap in every Python process it starts) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlm_toolkit._lazy import lazy_exports
from rlm_toolkit.version import __version__

if TYPE_CHECKING:
    from rlm_toolkit._instrument import instrument, uninstrument
    from rlm_toolkit.runtime import RLM, RLMConfig, RLMCredentialsError, RLMResult, end_open_runs

__all__ = [
    "RLM",
    "RLMConfig",
    "RLMCredentialsError",
    "RLMResult",
    "__version__",
    "end_open_runs",
    "instrument",
    "uninstrument",
]

_LAZY = {
    "RLMCredentialsError": "rlm_toolkit.runtime",
    "RLM": "rlm_toolkit.runtime",
    "RLMConfig": "rlm_toolkit.runtime",
    "RLMResult": "rlm_toolkit.runtime",
    "end_open_runs": "rlm_toolkit.runtime",
    "instrument": "rlm_toolkit._instrument",
    "uninstrument": "rlm_toolkit._instrument",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
