"""Structural checks of collector-config.yaml and docker-compose.yaml (no Collector binary here).

ALLOWED_KEYS lists the configuration keys each component type accepts. Source: the
Collector's component config structs and READMEs, written down from knowledge (not fetched):
  * receiver ``otlp``: otlpreceiver.Config -> protocols.{grpc: configgrpc.ServerConfig,
    http: confighttp.ServerConfig + traces/metrics/logs_url_path}
  * processor ``memory_limiter``: memorylimiterprocessor / memorylimiter.Config
  * processor ``batch``: batchprocessor.Config
  * exporter ``otlp``: otlpexporter.Config = configgrpc.ClientConfig + exporterhelper
    (timeout, sending_queue, retry_on_failure)
  * exporter ``otlphttp``: otlphttpexporter.Config = confighttp.ClientConfig + per-signal
    endpoints + encoding + exporterhelper
  * exporter ``debug``: debugexporter.Config
A cross-check of the memory_limiter keys against its generated config table
(check_interval, limit_mib, spike_limit_mib, ...) was done with the search tool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?$")
ENV_REF = re.compile(r"\$\{env:([A-Z_][A-Z0-9_]*)(:-[^}]*)?\}")

_EXPORTER_HELPER = {"timeout", "sending_queue", "retry_on_failure", "batcher"}
_TLS_CLIENT = {
    "insecure",
    "insecure_skip_verify",
    "ca_file",
    "ca_pem",
    "cert_file",
    "cert_pem",
    "key_file",
    "key_pem",
    "server_name_override",
    "min_version",
    "max_version",
    "reload_interval",
    "include_system_ca_certs_pool",
}
ALLOWED_KEYS: dict[str, set[str]] = {
    "receivers/otlp": {"protocols"},
    "receivers/otlp/protocols": {"grpc", "http"},
    "receivers/otlp/protocols/grpc": {
        "endpoint",
        "transport",
        "tls",
        "max_recv_msg_size_mib",
        "max_concurrent_streams",
        "read_buffer_size",
        "write_buffer_size",
        "keepalive",
        "auth",
        "include_metadata",
    },
    "receivers/otlp/protocols/http": {
        "endpoint",
        "tls",
        "cors",
        "auth",
        "max_request_body_size",
        "include_metadata",
        "response_headers",
        "traces_url_path",
        "metrics_url_path",
        "logs_url_path",
    },
    "processors/memory_limiter": {
        "check_interval",
        "limit_mib",
        "spike_limit_mib",
        "limit_percentage",
        "spike_limit_percentage",
        "min_gc_interval_when_soft_limited",
        "min_gc_interval_when_hard_limited",
    },
    "processors/batch": {
        "timeout",
        "send_batch_size",
        "send_batch_max_size",
        "metadata_keys",
        "metadata_cardinality_limit",
    },
    "exporters/otlp": {
        "endpoint",
        "tls",
        "headers",
        "compression",
        "keepalive",
        "balancer_name",
        "authority",
        "auth",
        "read_buffer_size",
        "write_buffer_size",
        "wait_for_ready",
    }
    | _EXPORTER_HELPER,
    "exporters/otlphttp": {
        "endpoint",
        "traces_endpoint",
        "metrics_endpoint",
        "logs_endpoint",
        "tls",
        "headers",
        "compression",
        "encoding",
        "proxy_url",
        "read_buffer_size",
        "write_buffer_size",
        "max_idle_conns",
        "idle_conn_timeout",
        "auth",
    }
    | _EXPORTER_HELPER,
    "exporters/debug": {"verbosity", "sampling_initial", "sampling_thereafter", "use_internal_logger"},
    "tls": _TLS_CLIENT,
}
PIPELINE_TYPES = {"traces", "metrics", "logs"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "collector-config.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def test_top_level_sections(config: dict[str, Any]) -> None:
    assert set(config) == {"receivers", "processors", "exporters", "service"}
    assert set(config["service"]) <= {"pipelines", "extensions", "telemetry"}
    assert set(config["service"]["pipelines"]) == PIPELINE_TYPES


def test_ids_are_well_formed_and_of_known_types(config: dict[str, Any]) -> None:
    for kind in ("receivers", "processors", "exporters"):
        for component_id in config[kind]:
            assert ID.match(component_id), f"{kind}: bad id {component_id!r} (expected type[/name])"
            assert f"{kind}/{_type(component_id)}" in ALLOWED_KEYS, (
                f"{kind}: unknown type in {component_id!r}"
            )
    for name in config["service"]["pipelines"]:
        assert ID.match(name)


def test_every_pipeline_is_complete_and_references_defined_components(config: dict[str, Any]) -> None:
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in config["service"]["pipelines"].items():
        assert set(pipeline) <= {"receivers", "processors", "exporters"}, name
        assert pipeline["receivers"], f"pipeline {name} has no receiver"
        assert pipeline["exporters"], f"pipeline {name} has no exporter"
        for kind in used:
            for component_id in pipeline.get(kind, []):
                assert component_id in config[kind], (
                    f"pipeline {name} names undefined {kind[:-1]} {component_id!r}"
                )
                used[kind].add(component_id)
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", f"pipeline {name}: memory_limiter must come first"
        assert processors[-1] == "batch", f"pipeline {name}: batch must come last"
    for kind, ids in used.items():
        assert set(config[kind]) == ids, f"defined but unused {kind}: {set(config[kind]) - ids}"


def _check_keys(path: str, allowed_path: str, value: Any) -> None:
    allowed = ALLOWED_KEYS[allowed_path]
    unknown = set(value) - allowed
    assert not unknown, f"{path}: keys {sorted(unknown)} are not accepted by {allowed_path}"


def test_component_keys_are_accepted(config: dict[str, Any]) -> None:
    for kind in ("processors", "exporters"):
        for component_id, body in config[kind].items():
            _check_keys(f"{kind}/{component_id}", f"{kind}/{_type(component_id)}", body or {})
            if isinstance(body, dict) and "tls" in body:
                _check_keys(f"{kind}/{component_id}/tls", "tls", body["tls"])
    otlp = config["receivers"]["otlp"]
    _check_keys("receivers/otlp", "receivers/otlp", otlp)
    _check_keys("receivers/otlp/protocols", "receivers/otlp/protocols", otlp["protocols"])
    for protocol, body in otlp["protocols"].items():
        _check_keys(f"receivers/otlp/protocols/{protocol}", f"receivers/otlp/protocols/{protocol}", body)


def test_receivers_bind_a_configurable_loopback_default(config: dict[str, Any]) -> None:
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "${env:RLM_COLLECTOR_HOST:-127.0.0.1}:4317"
    assert protocols["http"]["endpoint"] == "${env:RLM_COLLECTOR_HOST:-127.0.0.1}:4318"


def test_destinations(config: dict[str, Any]) -> None:
    exporters = config["exporters"]
    assert exporters["otlp/jaeger"]["endpoint"].endswith("jaeger:4317}")
    assert exporters["otlp/jaeger"]["tls"] == {"insecure": True}
    for name in ("otlphttp/honeycomb", "otlphttp/honeycomb_metrics"):
        assert exporters[name]["headers"]["x-honeycomb-team"] == "${env:HONEYCOMB_API_KEY}"
    assert "x-honeycomb-dataset" in exporters["otlphttp/honeycomb_metrics"]["headers"]
    pipelines = config["service"]["pipelines"]
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]
    assert "otlphttp/honeycomb_metrics" in pipelines["metrics"]["exporters"]
    assert all("debug" in p["exporters"] for p in pipelines.values())


def test_env_references_use_collector_syntax() -> None:
    text = (ROOT / "collector-config.yaml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "${" in body
    assert body.count("${") == len(ENV_REF.findall(body)), (
        "every ${...} must be ${env:NAME} or ${env:NAME:-default}"
    )


def test_compose_runs_the_collector_with_this_config_and_jaeger() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    collector, jaeger = services["otel-collector"], services["jaeger"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert jaeger["image"].startswith("jaegertracing/")
    assert any(v.startswith("./collector-config.yaml:") for v in collector["volumes"])
    config_path = collector["volumes"][0].split(":")[1]
    assert collector["command"] == [f"--config={config_path}"]
    assert collector["environment"]["RLM_COLLECTOR_HOST"] == "0.0.0.0"
    for service in services.values():  # published on loopback only
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))
