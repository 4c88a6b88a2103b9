"""A reference contender: the leanest wrapper that emits the floor's telemetry around a real call.

``MinimalInstrumentor`` wraps ``Completions.create`` (sync, non-streaming chat only) with wrapt
and does exactly what :func:`worker.floor_fn` does, plus the least a real instrumentation must
add: read the model and the response, make the span current during the call, time it. No
error handling, no streams, no content, no retries, no cost: it is not a product, it is a
yardstick. Its in-situ cost shows how close to the floor any wrapper can get on this machine.

    python benchmarks/run.py --reference      # adds it as a contender (chat only)
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.context import attach, detach, get_current
from opentelemetry.trace import SpanKind, set_span_in_context


class MinimalInstrumentor:
    """``instrument(tracer_provider=, meter_provider=, logger_provider=)`` / ``uninstrument()``."""

    def instrument(self, **providers: Any) -> None:
        import wrapt
        from openai.resources.chat.completions import Completions

        tracer = providers["tracer_provider"].get_tracer("reference")
        meter = providers["meter_provider"].get_meter("reference")
        duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        metric_attrs: dict[tuple[Any, ...], tuple[dict[str, Any], ...]] = {}

        def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            model = kwargs.get("model")
            url = instance._client.base_url
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "server.address": url.host,
                "server.port": url.port,
            }
            start = time.perf_counter_ns()
            ctx = get_current()
            span = tracer.start_span(f"chat {model}", ctx, SpanKind.CLIENT, attrs)
            token = attach(set_span_in_context(span, ctx))
            try:
                response = wrapped(*args, **kwargs)
            finally:
                detach(token)
            usage = response.usage
            span.set_attributes(
                {
                    "gen_ai.response.id": response.id,
                    "gen_ai.response.model": response.model,
                    "gen_ai.response.finish_reasons": tuple(c.finish_reason for c in response.choices),
                    "openai.response.system_fingerprint": response.system_fingerprint,
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                }
            )
            span.end()
            key = (model, response.model, url.host, url.port)
            sets = metric_attrs.get(key)
            if sets is None:
                base = {**attrs, "gen_ai.response.model": response.model}
                sets = metric_attrs[key] = (
                    base,
                    {**base, "gen_ai.token.type": "input"},
                    {**base, "gen_ai.token.type": "output"},
                )
            duration.record((time.perf_counter_ns() - start) / 1e9, sets[0])
            tokens.record(usage.prompt_tokens, sets[1])
            tokens.record(usage.completion_tokens, sets[2])
            return response

        self._original = vars(Completions)["create"]
        wrapt.wrap_function_wrapper(Completions, "create", wrapper)

    def uninstrument(self) -> None:
        from openai.resources.chat.completions import Completions

        Completions.create = self._original  # type: ignore[method-assign]
