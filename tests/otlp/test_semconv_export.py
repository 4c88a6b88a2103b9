"""Both convention modes end to end (issue #11): the demo under rlm-instrument, switched only by
``OTEL_SEMCONV_STABILITY_OPT_IN`` as users set it, exporting over real OTLP to the receiver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from otlp.conftest import DEMO, run_cli
from otlp.receiver import OTLPReceiver
from rlm_toolkit.testing import OpenAIServer

SCOPE = "rlm_toolkit.instrumentation.openai"
LLM_OPERATIONS = {"chat", "text_completion", "embeddings"}
V141 = {
    "gen_ai.client.operation.duration",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.client.operation.time_per_output_chunk",
    "gen_ai.client.token.usage",
}
LATEST = {
    "gen_ai.client.inference.duration",
    "gen_ai.client.inference.time_to_first_chunk",
    "gen_ai.client.inference.time_per_output_chunk",
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",  # a reported 0 is recorded
    "gen_ai.client.inference.usage.reasoning.output_tokens",
    "gen_ai.client.inference.operation.input_tokens",
    "gen_ai.client.inference.operation.output_tokens",
    "gen_ai.client.embeddings.duration",  # the demo embeds: not an inference operation
    "gen_ai.client.embeddings.operation.input_tokens",
    "gen_ai.invocation.duration",  # and each run (root and nested)
    "gen_ai.invoke_agent.tool_calls",  # the code executions each run made itself
    "gen_ai.execute_tool.duration",  # the demo's recursive run executes code
}
GENAI_SCHEMA = "https://opentelemetry.io/schemas/gen-ai/1.42.0"
CORE_SCHEMA = "https://opentelemetry.io/schemas/1.41.0"  # the default (v1.41) mode's


@pytest.mark.parametrize(
    ("opt_in", "protocol"),
    [(None, "grpc"), ("http,gen_ai_latest_experimental", "http/protobuf")],
    ids=["v1.41-grpc", "latest-http"],
)
def test_mode_over_otlp(
    opt_in: str | None,
    protocol: str,
    openai_server: OpenAIServer,
    receiver: OTLPReceiver,
    demo_env: dict[str, str],
) -> None:
    env = dict(demo_env)
    if opt_in is not None:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = opt_in
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    result = run_cli(["--endpoint", endpoint, "--protocol", protocol, sys.executable, str(DEMO)], env)
    assert result.returncode == 0, result.stderr

    latest = opt_in is not None
    schema = GENAI_SCHEMA if latest else CORE_SCHEMA
    metrics = receiver.metrics()
    gen_ai = {name for name in metrics if name.startswith("gen_ai.")}
    assert gen_ai == (LATEST if latest else V141)
    assert "rlm.client.cost" in metrics  # our own names do not depend on the mode
    for name in LATEST & gen_ai:
        if name.startswith("gen_ai.client.inference.usage."):
            (_, metric), *_ = metrics[name]
            assert metric.WhichOneof("data") == "sum" and metric.sum.is_monotonic
            for point in metric.sum.data_points:
                keys = {kv.key for kv in point.attributes}
                assert "gen_ai.token.type" not in keys and "gen_ai.token.modality" in keys

    schemas = set()
    for item in receiver.received:
        for resource in getattr(
            item.request, f"resource_{item.signal if item.signal != 'traces' else 'spans'}"
        ):
            for scoped in getattr(resource, f"scope_{item.signal if item.signal != 'traces' else 'spans'}"):
                if scoped.scope.name == SCOPE:
                    schemas.add((item.signal, scoped.schema_url))
    assert {("traces", schema), ("metrics", schema)} <= schemas
    assert {url for _, url in schemas} == {schema}
    llm = [
        s
        for s in receiver.spans()
        if s["scope"] == SCOPE and s["attributes"].get("gen_ai.operation.name") in LLM_OPERATIONS
    ]
    assert llm and all(s["attributes"]["gen_ai.provider.name"] == "openai" for s in llm)


def test_stream_usage_flag(
    openai_server: OpenAIServer, receiver: OTLPReceiver, demo_env: dict[str, str], tmp_path: Path
) -> None:
    """``--stream-usage``: a streamed call that did not ask for usage gets it on its span, and
    the program prints exactly what it prints without the flag."""
    app = tmp_path / "app.py"
    app.write_text(
        "import openai\n"
        "client = openai.OpenAI()\n"
        "stream = client.chat.completions.create(model='gpt-4o-mini', stream=True,\n"
        "    messages=[{'role': 'user', 'content': 'Say hi'}])\n"
        "for chunk in stream:\n"
        "    print(chunk.model_dump_json(exclude={'id', 'created'}, exclude_unset=True))\n"
    )
    args = ["--endpoint", receiver.http_endpoint, "--protocol", "http/protobuf"]
    plain = run_cli([*args, sys.executable, str(app)], demo_env)
    flagged = run_cli([*args, "--stream-usage", sys.executable, str(app)], demo_env)
    assert plain.returncode == flagged.returncode == 0, flagged.stderr
    assert flagged.stdout == plain.stdout and plain.stdout.count("\n") > 2
    first, second = sorted(receiver.spans(), key=lambda s: s["start"])
    assert "gen_ai.usage.output_tokens" not in first["attributes"]
    assert second["attributes"]["gen_ai.usage.output_tokens"] > 0
