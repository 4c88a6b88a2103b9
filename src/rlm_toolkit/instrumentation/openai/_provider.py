"""``gen_ai.provider.name`` of a call, from the client that makes it.

People point the ``openai`` SDK at many OpenAI-compatible services; a span that says
``openai`` for all of them groups dashboards wrongly and prices other providers' models at
OpenAI's rates. The rule, in order:

1. an Azure client (``AzureOpenAI``/``AsyncAzureOpenAI``, or a subclass) -> ``azure.ai.openai``;
2. a well-known host -> the conventions' value for it (table :data:`HOSTS`; a host matches
   itself and its subdomains, so ``eu.api.x.ai`` is ``x_ai`` too); Azure OpenAI resource hosts
   (``*.openai.azure.com``, ``*.cognitiveservices.azure.com``) -> ``azure.ai.openai`` with any
   client class; ``openrouter.ai`` -> ``openrouter`` (not in the conventions' list: our value);
3. anything else (a self-hosted vLLM/Ollama/LiteLLM server, a corporate proxy, the offline test
   server) -> ``openai``: the server speaks OpenAI's API, and ``server.address`` (always the real
   host) tells these endpoints apart.

Cost follows the provider (``pricing.PRICED_PROVIDERS``): only ``openai`` calls are priced from
the bundled table. Values used (``azure.ai.openai``, ``groq``, ``deepseek``, ``x_ai``,
``mistral_ai``, ``gcp.gemini``, ``perplexity``, ``openai``) are the members of
``opentelemetry.semconv._incubating.attributes.gen_ai_attributes.GenAiProviderNameValues``.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues as P

from rlm_toolkit.attributes import PROVIDER_OPENROUTER

OPENAI: Final = P.OPENAI.value
AZURE_OPENAI: Final = P.AZURE_AI_OPENAI.value

#: Host (or parent domain) -> provider name.
HOSTS: Final[dict[str, str]] = {
    "api.openai.com": OPENAI,
    "openai.azure.com": AZURE_OPENAI,
    "cognitiveservices.azure.com": AZURE_OPENAI,
    "api.groq.com": P.GROQ.value,
    "api.deepseek.com": P.DEEPSEEK.value,
    "api.x.ai": P.X_AI.value,
    "api.mistral.ai": P.MISTRAL_AI.value,
    "generativelanguage.googleapis.com": P.GCP_GEMINI.value,
    "api.perplexity.ai": P.PERPLEXITY.value,
    "openrouter.ai": PROVIDER_OPENROUTER,
}


def provider_for_host(host: str | None) -> str:
    """The provider name for a server host (rules 2 and 3 of the module doc)."""
    if not host:
        return OPENAI
    name = host.lower().rstrip(".")
    while True:
        found = HOSTS.get(name)
        if found is not None:
            return found
        cut = name.find(".")
        if cut < 0:
            return OPENAI
        name = name[cut + 1 :]


def _azure_classes() -> tuple[type, ...]:
    try:
        from openai import AsyncAzureOpenAI, AzureOpenAI
    except ImportError:  # pragma: no cover - every supported SDK has them
        return ()
    return (AzureOpenAI, AsyncAzureOpenAI)


_AZURE: tuple[type, ...] | None = None


def provider_name(client: Any, host: str | None) -> str:
    """``gen_ai.provider.name`` for a call made by ``client`` (the SDK client) to ``host``.
    Called once per client base URL (the caller caches it with the host and port)."""
    global _AZURE
    if _AZURE is None:
        _AZURE = _azure_classes()
    if _AZURE and isinstance(client, _AZURE):
        return AZURE_OPENAI
    return provider_for_host(host)
