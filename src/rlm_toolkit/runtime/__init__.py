"""The RLM runtime: ``RLM.from_openai(...).run(prompt)`` with scoped callbacks and retries.

``run`` makes one chat call per prompt (streamed when a callback wants tokens), inside an
``invoke_agent rlm`` span whose children are the instrumented LLM calls. Context mode is a
single call for now; the recursive REPL runtime will plug in as another :class:`Strategy`
(the documented seam; its request/completion message types stay private until that runtime
settles them).
"""

from rlm_toolkit.runtime._result import RLMResult, Usage
from rlm_toolkit.runtime._retry import RetryPolicy
from rlm_toolkit.runtime._rlm import RLM
from rlm_toolkit.runtime._strategy import Strategy
from rlm_toolkit.runtime._stream import RLMStream

__all__ = [
    "RLM",
    "RLMResult",
    "RLMStream",
    "RetryPolicy",
    "Strategy",
    "Usage",
]
