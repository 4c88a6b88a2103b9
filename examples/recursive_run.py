"""A recursive run: find one sentence in a multi-megabyte context that no prompt could hold.

    python examples/recursive_run.py                  # the trace tree and the callbacks' events
    RLM_EXAMPLE_CHARS=10000000 python examples/recursive_run.py   # a 10M-character context
    rlm-instrument --exporter jsonl python examples/recursive_run.py   # spans where you send them

The context lives in a sandboxed REPL process. The root model writes code that searches it,
asks a sub-model about the excerpts with ``llm_query_batched``, confirms with a nested
``rlm_query`` run, and finishes with ``FINAL_VAR``. Every model call and code execution is a
span; callbacks see ``on_tool_start``/``on_tool_end`` for each execution. Without
OPENAI_API_KEY the bundled offline model plays the run, deterministically. Under an
OpenTelemetry setup of your own (``rlm-instrument``, ``opentelemetry-instrument``, or a
``trace.set_tracer_provider`` call) the spans go there; otherwise the example prints its own
trace tree.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rlm_toolkit import RLM, RLMConfig
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.exporters import ConsoleTreeExporter
from rlm_toolkit.testing import make_haystack, offline_if_no_key

QUESTION = "What is the secret launch code?"


class Steps(BaseCallback):
    """Prints what the run does, nested by parent run id."""

    def __init__(self) -> None:
        self.depth: dict[str | None, int] = {}

    def _indent(self, kwargs: dict[str, Any]) -> str:
        depth = self.depth.get(kwargs.get("parent_run_id"), -1) + 1
        self.depth[kwargs.get("run_id")] = depth
        return "  " * depth

    def on_run_start(self, prompt: str, **kwargs: Any) -> None:
        print(f"{self._indent(kwargs)}run: {prompt}")

    def on_tool_start(self, tool_name: str, tool_input: Any = None, **kwargs: Any) -> None:
        first = str(tool_input).strip().splitlines()[0] if tool_input else ""
        print(f"{self._indent(kwargs)}{tool_name}: {first} ...")

    def on_llm_start(self, prompt: str, **kwargs: Any) -> None:
        print(f"{self._indent(kwargs)}llm: {prompt.splitlines()[0][:60]}")


def main() -> None:
    offline_if_no_key()
    chars = int(os.environ.get("RLM_EXAMPLE_CHARS", "2000000"))
    context = make_haystack(chars)
    provider = None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        # Nobody configured OpenTelemetry: a provider of our own that prints the trace tree.
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ConsoleTreeExporter()))
    rlm = RLM.from_openai(
        os.environ.get("DEMO_MODEL", "gpt-4o-mini"),
        callbacks=[Steps()],
        tracer_provider=provider,
        config=RLMConfig(max_iterations=8, max_cost_usd=0.50, max_depth=1),
    )
    result = rlm.run(QUESTION, context=context)
    if provider is not None:
        provider.shutdown()  # prints the tree (a configured provider is flushed by its owner)
    print(f"\nanswer: {result.answer}")
    print(
        f"status={result.status} iterations={result.iterations} sub-calls={result.subcalls} "
        f"depth={result.depth} tokens={result.usage.total_tokens} cost=${result.cost or 0:.6f}"
    )


if __name__ == "__main__":
    main()
