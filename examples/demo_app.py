"""A plain openai-SDK app: the `make demo` job.

Nothing here knows about telemetry. Run it under `rlm-instrument` and every call below shows
up as a span (with tokens, cost, retries and errors), plus metrics and events:

    rlm-instrument python examples/demo_app.py                        # trace tree in the terminal
    rlm-instrument --to jaeger python examples/demo_app.py            # to a local Jaeger
    rlm-instrument --endpoint http://127.0.0.1:4318 python examples/demo_app.py   # any OTLP backend

Without OPENAI_API_KEY it talks to rlm-toolkit's bundled offline model server, so it runs on a
fresh machine with no network; that server also rate-limits the embeddings call once, so the
SDK's retry shows up in the telemetry. Set DEMO_MODEL / DEMO_EMBEDDING_MODEL to pick models.

Then one call to a Claude model through the anthropic SDK (RLM.from_anthropic: the same span
shape, tokens and cost as the OpenAI calls; without ANTHROPIC_API_KEY the offline server answers
it over the Messages API; DEMO_ANTHROPIC_MODEL picks the model).

The last part is a recursive run (rlm_toolkit.RLM): a 2M-character context that never enters a
prompt, searched by model-written code in a sandboxed REPL, with sub-calls and a nested run;
its trace tree shows every model call and code execution.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

from openai import OpenAI
from opentelemetry import trace  # the plain OTel API: a no-op unless a provider is configured

from rlm_toolkit import RLM, RLMConfig
from rlm_toolkit.testing import make_haystack, offline_if_no_key

MODEL = os.environ.get("DEMO_MODEL", "gpt-4o-mini")
CLAUDE = os.environ.get("DEMO_ANTHROPIC_MODEL", "claude-haiku-4-5")
EMBEDDING_MODEL = os.environ.get("DEMO_EMBEDDING_MODEL", "text-embedding-3-small")
RETRY_AFTER_S = 0.2  # the Retry-After the offline server sends with its one 429
tracer = trace.get_tracer("demo_app")


def heading(title: str) -> None:
    print(f"\n\033[1m▸ {title}\033[0m" if sys.stdout.isatty() else f"\n▸ {title}", flush=True)


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "forecast": "sunny", "temperature_c": 21})


def main() -> None:
    if sys.stdout.isatty():  # let a human watch the offline model stream (no effect with a real key)
        os.environ.setdefault("RLM_DEMO_TOKEN_DELAY", "0.03")
    offline = offline_if_no_key()
    client = OpenAI()

    with tracer.start_as_current_span("demo"):
        heading("1. chat completion")
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello to a new rlm-toolkit user in one sentence."},
            ],
        )
        print(reply.choices[0].message.content)

        heading("2. streamed chat, token by token")
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a haiku about tracing."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()

        heading("3. embeddings")
        if offline is not None:  # the offline server answers 429 once; a real API does it when it must
            offline.queue_fault("rate_limit", retry_after=RETRY_AFTER_S, path="/embeddings")
        vectors = client.embeddings.create(model=EMBEDDING_MODEL, input=["observability", "telemetry"])
        if offline is not None and offline.pending[1] == 0:  # the fault was used up: we were retried
            print(
                f"HTTP 429 Too Many Requests → the openai SDK waited {RETRY_AFTER_S} s and retried on its own"
            )
        print(f"{len(vectors.data)} vectors of {len(vectors.data[0].embedding)} dimensions")

        heading("4. Responses API")
        response = client.responses.create(model=MODEL, input="In five words: why trace LLM calls?")
        print(response.output_text)

        heading("5. tool call round trip")
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather forecast for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ]
        if offline is not None:  # the offline model only calls tools when scripted to
            offline.queue_reply(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}])
        messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
        message = first.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls or []:
            args = json.loads(call.function.arguments)
            print(f"model asked for {call.function.name}({args})")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": get_weather(**args)})
        if message.tool_calls:
            final = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
            print(final.choices[0].message.content)
        else:
            print(message.content)

        heading("6. a Claude model through the anthropic SDK")
        claude_call(offline)

        heading("7. recursive run: a 2M-character context in a sandboxed REPL")
        rlm = RLM.from_openai(MODEL, config=RLMConfig(max_iterations=8, max_cost_usd=0.25))
        result = rlm.run("What is the secret launch code?", context=make_haystack(2_000_000))
        print(result.answer)
        print(
            f"{result.status} after {result.iterations} turns, {result.subcalls} sub-calls, "
            f"depth {result.depth}, {result.usage.total_tokens} tokens"
        )


def claude_call(offline: object) -> None:
    """One Messages API call, reported like the OpenAI ones (one span, tokens, cost)."""
    options: dict[str, str] = {}
    if not os.environ.get("ANTHROPIC_API_KEY"):
        if offline is None:
            print("skipped: set ANTHROPIC_API_KEY to call a Claude model")
            return
        options = {"base_url": offline.url, "api_key": "sk-ant-offline-demo"}  # type: ignore[attr-defined]
    if importlib.util.find_spec("anthropic") is None:  # the optional extra
        print("skipped: the anthropic SDK is not installed (pip install 'rlm-toolkit[anthropic]')")
        return
    claude = RLM.from_anthropic(CLAUDE, max_tokens=200, **options)
    result = claude.run("Say hello to a new rlm-toolkit user in one sentence.")
    print(result.answer)
    cost = f"${result.cost:.6f}" if result.cost is not None else "unpriced"
    print(f"{result.model}: {result.usage.total_tokens} tokens, {cost}")


if __name__ == "__main__":
    main()
