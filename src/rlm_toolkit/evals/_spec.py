"""What a worker needs to build the RLM: picklable, secret-free."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlm_toolkit.runtime import RLM, RLMConfig

_SECRET_OPTIONS = frozenset({"api_key", "default_headers", "auth", "http_client"})
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(RLMConfig)) - {"sandbox_limits"}


@dataclass(frozen=True)
class EvalSpec:
    """The model and settings every task of an eval runs with.

    Shipped to workers as is (never an ``RLM``, which holds clients): ``config`` holds
    :class:`RLMConfig` fields (all but ``sandbox_limits``), ``client_options`` the
    ``openai`` client's non-secret options (``timeout``, ``max_retries``, ``organization``,
    ``project``). The API key is read from ``OPENAI_API_KEY`` in each worker's environment.
    """

    model: str
    sub_model: str | None = None
    base_url: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    client_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"EvalSpec needs model=<model name>, got {self.model!r}")
        secret = sorted(_SECRET_OPTIONS & set(self.client_options))
        if secret:
            raise ValueError(
                f"EvalSpec client_options must not hold {secret[0]!r}: workers read the key from "
                "OPENAI_API_KEY in their own environment"
            )
        unknown = sorted(set(self.config) - _CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"EvalSpec config: unknown RLMConfig field {unknown[0]!r}")
        RLMConfig(**self.config)  # the config's own checks, before any worker starts

    def build(self) -> RLM:
        """A fresh RLM in this (worker) process."""
        options: dict[str, Any] = dict(self.client_options)
        if self.base_url is not None:
            options["base_url"] = self.base_url
        return RLM.from_openai(
            self.model, sub_model=self.sub_model, config=RLMConfig(**self.config), **options
        )
