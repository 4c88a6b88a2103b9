"""Instrumentations of third-party SDKs (today: ``openai``)."""

from __future__ import annotations

from rlm_toolkit.instrumentation.openai import OpenAIInstrumentor

__all__ = ["OpenAIInstrumentor"]
