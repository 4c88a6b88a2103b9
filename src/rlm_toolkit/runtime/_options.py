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
