"""A sandboxed Python REPL for model-written code (issue #10).

The code runs in a separate, confined worker process; the host keeps secrets, budgets and
telemetry, and services the code's ``llm_query``/``rlm_query`` calls. What the sandbox protects
against, and what it does not, is in SECURITY.md at the repository root.
"""

from rlm_toolkit.sandbox._ready import ReadySandboxes
from rlm_toolkit.sandbox._sandbox import Sandbox
from rlm_toolkit.sandbox._types import ExecutionResult, QueryHandler, SandboxLimits

__all__ = ["ExecutionResult", "QueryHandler", "ReadySandboxes", "Sandbox", "SandboxLimits"]
