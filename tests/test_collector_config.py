"""Structural checks of collector-config.yaml and docker-compose.yaml (no Collector binary here).

Where ALLOWED_KEYS comes from: the ``mapstructure`` tags of each component's config struct in
open-telemetry/opentelemetry-collector at tag v0.123.0 -- the release docker-compose.yaml pins
(otel/opentelemetry-collector-contrib:0.123.0) -- read with ``git show v0.123.0:<path>`` from a
mirror fetched with the search tool (embedded structs with ``,squash`` flattened in):
  * receiver ``otlp``: receiver/otlpreceiver/config.go (Config.protocols -> Protocols.{grpc, http})
    - ``grpc``: config/configgrpc/configgrpc.go ServerConfig + config/confignet/confignet.go
      AddrConfig (endpoint, transport, dialer)
    - ``http``: config/confighttp/confighttp.go ServerConfig + HTTPConfig's *_url_path
  * processor ``memory_limiter``: processor/memorylimiterprocessor/config.go, an alias of
    internal/memorylimiter/config.go Config (v0.123.0 has no ``model``/``admission`` yet)
  * processor ``batch``: processor/batchprocessor/config.go
  * exporter ``otlp``: exporter/otlpexporter/config.go = exporterhelper TimeoutConfig (timeout) +
    ``sending_queue`` + ``retry_on_failure`` + configgrpc.ClientConfig + deprecated ``batcher``
  * exporter ``otlphttp``: exporter/otlphttpexporter/config.go = confighttp.ClientConfig (which has
    ``timeout``) + ``sending_queue`` + ``retry_on_failure`` + per-signal endpoints + ``encoding``
  * exporter ``debug``: exporter/debugexporter/config.go
  * ``tls`` (client): config/configtls/configtls.go ClientConfig + Config
  * ``sending_queue``: exporter/exporterhelper/internal/queuebatch/config.go Config
  * ``retry_on_failure``: config/configretry/backoff.go BackOffConfig
``${env:NAME:-default}`` is supported by confmap/provider/envprovider/provider.go (``:-`` suffix).

Docs checked (search tool) for the destinations: Honeycomb wants the API key in
``x-honeycomb-team`` and, for metrics, the dataset in ``x-honeycomb-dataset`` (else metrics land in
``unknown_metrics``); endpoints api.honeycomb.io / api.eu1.honeycomb.io
(docs.honeycomb.io/send-data/metrics/application). Jaeger v2 (jaegertracing/jaeger:2.5.0) takes
OTLP on 4317/4318 and serves the UI on 16686; its embedded all-in-one config binds
``${env:JAEGER_LISTEN_HOST:-localhost}`` and its image sets JAEGER_LISTEN_HOST=0.0.0.0
(jaegertracing/jaeger v2.5.0: cmd/jaeger/internal/all-in-one.yaml, cmd/jaeger/Dockerfile). The
contrib image's entrypoint is /otelcol-contrib with ``--config /etc/otelcol-contrib/config.yaml``
(open-telemetry/opentelemetry-collector-releases: distributions/otelcol-contrib/Dockerfile).
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

_QUEUE_AND_RETRY = {"sending_queue", "retry_on_failure"}
_TLS_CLIENT = {
    # configtls.Config
    "ca_file",
    "ca_pem",
    "include_system_ca_certs_pool",
    "cert_file",
    "cert_pem",
    "key_file",
    "key_pem",
    "min_version",
    "max_version",
    "cipher_suites",
    "reload_interval",
    "curve_preferences",
    # configtls.ClientConfig
    "insecure",
    "insecure_skip_verify",
    "server_name_override",
}
ALLOWED_KEYS: dict[str, set[str]] = {
    "receivers/otlp": {"protocols"},
    "receivers/otlp/protocols": {"grpc", "http"},
    "receivers/otlp/protocols/grpc": {
        "endpoint",
        "transport",
        "dialer",
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
        "compression_algorithms",
        "read_timeout",
        "read_header_timeout",
        "write_timeout",
        "idle_timeout",
        "traces_url_path",
        "metrics_url_path",
        "logs_url_path",
    },
    "processors/memory_limiter": {
        "check_interval",
        "min_gc_interval_when_soft_limited",
        "min_gc_interval_when_hard_limited",
        "limit_mib",
        "spike_limit_mib",
        "limit_percentage",
        "spike_limit_percentage",
    },
    "processors/batch": {
        "timeout",
        "send_batch_size",
        "send_batch_max_size",
        "metadata_keys",
        "metadata_cardinality_limit",
    },
    "exporters/otlp": {
        "timeout",
        "batcher",
        "endpoint",
        "compression",
        "tls",
        "keepalive",
        "read_buffer_size",
        "write_buffer_size",
        "wait_for_ready",
        "headers",
        "balancer_name",
        "authority",
        "auth",
    }
    | _QUEUE_AND_RETRY,
    "exporters/otlphttp": {
        "endpoint",
        "proxy_url",
        "tls",
        "read_buffer_size",
        "write_buffer_size",
        "timeout",
        "headers",
        "auth",
        "compression",
        "compression_params",
        "max_idle_conns",
        "max_idle_conns_per_host",
        "max_conns_per_host",
        "idle_conn_timeout",
        "disable_keep_alives",
        "http2_read_idle_timeout",
        "http2_ping_timeout",
        "cookies",
        "traces_endpoint",
        "metrics_endpoint",
        "logs_endpoint",
        "encoding",
    }
    | _QUEUE_AND_RETRY,
    "exporters/debug": {"verbosity", "sampling_initial", "sampling_thereafter", "use_internal_logger"},
    "tls": _TLS_CLIENT,
    "sending_queue": {
        "enabled",
        "wait_for_result",
        "sizer",
        "queue_size",
        "block_on_overflow",
        "blocking",
        "storage",
        "num_consumers",
        "batch",
    },
    "retry_on_failure": {
        "enabled",
        "initial_interval",
        "randomization_factor",
        "multiplier",
        "max_interval",
        "max_elapsed_time",
    },
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
            for nested in ("tls", "sending_queue", "retry_on_failure"):
                if isinstance(body, dict) and nested in body:
                    _check_keys(f"{kind}/{component_id}/{nested}", nested, body[nested])
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
    assert collector["environment"]["JAEGER_ENDPOINT"] == "jaeger:4317"
    assert jaeger["environment"]["JAEGER_LISTEN_HOST"] == "0.0.0.0"  # else OTLP binds localhost only
    for service in services.values():  # published on loopback only
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))
