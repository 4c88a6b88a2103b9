"""The RLM runtime: ``RLM.from_openai(...).run(prompt)`` with scoped callbacks and retries.

``run`` makes one chat call per prompt (streamed when a callback wants tokens), inside an
``invoke_agent rlm`` span whose children are the instrumented LLM calls. Context mode is a
single call for now; the recursive REPL runtime will plug in as another ``Strategy``.
"""

from rlm_toolkit.runtime._result import RLMResult, Usage
from rlm_toolkit.runtime._retry import RetryPolicy
from rlm_toolkit.runtime._rlm import RLM
from rlm_toolkit.runtime._strategy import Completion, DirectStrategy, LLMRequest, Strategy
from rlm_toolkit.runtime._stream import RLMStream

__all__ = [  # noqa: RUF022 -- plain sorted(), as tests/test_public_api.py checks
    "Completion",
    "DirectStrategy",
    "LLMRequest",
    "RLM",
    "RLMResult",
    "RLMStream",
    "RetryPolicy",
    "Strategy",
    "Usage",
]
