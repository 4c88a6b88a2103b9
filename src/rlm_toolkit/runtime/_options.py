"""``RLM.from_openai`` client options: validation and the retry policy they imply."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rlm_toolkit.runtime._retry import RetryPolicy

#: Options passed through to ``openai.OpenAI`` / ``openai.AsyncOpenAI``.
CLIENT_OPTIONS = (
    "api_key",
    "base_url",
    "default_headers",
    "organization",
    "project",
    "timeout",
)
VALID_OPTIONS = tuple(sorted((*CLIENT_OPTIONS, "max_retries", "retry")))


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], RetryPolicy]:
    """Return (kwargs for the SDK client, retry policy); a one-line TypeError for a bad option."""
    unknown = sorted(set(options) - set(VALID_OPTIONS))
    if unknown:
        raise TypeError(
            f"RLM.from_openai() got an unexpected option {unknown[0]!r}; valid options: {', '.join(VALID_OPTIONS)}"
        )
    retry = options.get("retry")
    if retry is None:
        policy = RetryPolicy()
    elif isinstance(retry, RetryPolicy):
        policy = retry
    else:
        raise TypeError(f"RLM.from_openai() option 'retry' must be a RetryPolicy, got {type(retry).__name__}")
    if "max_retries" in options:
        max_retries = options["max_retries"]
        if retry is not None and max_retries != policy.max_retries:
            raise ValueError(
                f"RLM.from_openai() got max_retries={max_retries!r} and retry.max_retries={policy.max_retries}; pass one"
            )
        policy = dataclasses.replace(policy, max_retries=max_retries)
    # Passed as given: what the user leaves out falls back to the SDK's environment variables.
    client_kwargs = {k: options[k] for k in CLIENT_OPTIONS if k in options}
    return client_kwargs, policy


class RLMCredentialsError(RuntimeError):
    """An RLM over ``openai`` has no API key to send (raised by the first run, before any
    request, span or sandbox starts). The message names the fixes in one line."""


#: Where the ``openai`` SDK finds a key for model calls when ``api_key`` is not passed (its
#: OPENAI_ADMIN_KEY alone passes its constructor, but a chat call then fails with a TypeError).
_KEY_VARIABLE = "OPENAI_API_KEY"


def check_openai_credentials(client_kwargs: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Raise :class:`RLMCredentialsError` when neither ``api_key`` nor ``OPENAI_API_KEY``
    gives the ``openai`` client a key (the SDK would raise a bare "Missing
    credentials" from deep inside the first run)."""
    if client_kwargs.get("api_key") or environ.get(_KEY_VARIABLE):
        return
    raise RLMCredentialsError(
        "no OpenAI API key: set OPENAI_API_KEY or pass api_key=...; for a local OpenAI-compatible "
        "server pass base_url=... with any api_key; to try it offline, run `python -m rlm_toolkit.testing` "
        "and set OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=unused "
        "(or call rlm_toolkit.testing.offline_if_no_key() first)"
    )


def check_anthropic_client(client: Any) -> None:
    """Raise :class:`RLMCredentialsError` when an ``anthropic`` client the RLM built has no way
    to authenticate: no ``api_key`` / ``auth_token`` (given or from ``ANTHROPIC_API_KEY`` /
    ``ANTHROPIC_AUTH_TOKEN``), no credentials the SDK discovered, no ``X-Api-Key`` /
    ``Authorization`` header (the SDK would raise its "Could not resolve authentication method"
    TypeError from inside the first call). The client is asked, not the environment, so every
    way the SDK finds credentials counts."""
    if getattr(client, "api_key", None) or getattr(client, "auth_token", None):
        return
    if getattr(client, "credentials", None) is not None or getattr(client, "_token_cache", None) is not None:
        return
    try:
        headers = {str(k).lower(): v for k, v in dict(client.default_headers).items()}
    except Exception:  # an SDK shaped otherwise: let its own check speak
        return
    if any(isinstance(headers.get(name), str) and headers[name] for name in ("x-api-key", "authorization")):
        return
    raise RLMCredentialsError(
        "no Anthropic API key: set ANTHROPIC_API_KEY or pass api_key=... (or auth_token=...); "
        "to try it offline, run `python -m rlm_toolkit.testing` and pass "
        "base_url='http://127.0.0.1:8000' with any api_key"
    )
