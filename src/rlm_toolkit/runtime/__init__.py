"""The RLM runtime: ``RLM.from_openai(...).run(prompt)`` with scoped callbacks and retries.

``run(prompt)`` makes one chat call (streamed when a callback wants tokens), inside an
``invoke_agent rlm`` span whose children are the instrumented LLM calls. ``run(prompt,
context=...)`` is a recursive run: the context lives in a sandboxed REPL the model programs,
with ``llm_query``/``rlm_query`` sub-calls, limits and budgets from an :class:`RLMConfig`,
and a span for every model call and code execution.
"""

from rlm_toolkit.runtime._budget import RLMConfig
from rlm_toolkit.runtime._exit import end_open_runs
from rlm_toolkit.runtime._options import RLMCredentialsError
from rlm_toolkit.runtime._result import RLMResult, Usage
from rlm_toolkit.runtime._retry import RetryPolicy
from rlm_toolkit.runtime._rlm import RLM
from rlm_toolkit.runtime._strategy import Strategy
from rlm_toolkit.runtime._stream import RLMStream

__all__ = [
    "RLM",
    "RLMConfig",
    "RLMCredentialsError",
    "RLMResult",
    "RLMStream",
    "RetryPolicy",
    "Strategy",
    "Usage",
    "end_open_runs",
]
