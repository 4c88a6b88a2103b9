"""The patch table of the ``anthropic`` SDK, walked by the shared ``_stainless`` patcher."""

from __future__ import annotations

from rlm_toolkit.genai import TelemetryHandler
from rlm_toolkit.instrumentation._stainless._patch import Factory, Patcher, Target, fixed
from rlm_toolkit.instrumentation.anthropic import _hooks, _operations, _specs
from rlm_toolkit.instrumentation.anthropic._wrappers import async_call, stream_helper, sync_call

_MESSAGES = ("anthropic.resources.messages.messages",)
_BETA = ("anthropic.resources.beta.messages.messages",)
_BASE = ("anthropic._base_client",)
_BATCHES = ("anthropic.resources.messages.batches",)
_BETA_BATCHES = ("anthropic.resources.beta.messages.batches",)


def _call(spec: _specs.ApiSpec, is_async: bool) -> Factory:
    if is_async:
        return lambda handler: async_call(handler, spec)
    return lambda handler: sync_call(handler, spec)


def _helper(spec: _specs.ApiSpec) -> Factory:
    return lambda handler: stream_helper(handler, spec)


def _op(spec: _operations.OpSpec, is_async: bool) -> Factory:
    if is_async:
        if spec.operation.endswith(".list"):  # a plain method returning a paginator
            return lambda handler: _operations.async_pages(handler, spec)
        return lambda handler: _operations.async_op(handler, spec)
    return lambda handler: _operations.sync_op(handler, spec)


def _operation_targets() -> tuple[Target, ...]:
    """``count_tokens`` and every ``batches`` method, sync and async, plain and beta."""
    out = [
        Target(_MESSAGES, "Messages.count_tokens", _op(_operations.COUNT_TOKENS, False)),
        Target(_MESSAGES, "AsyncMessages.count_tokens", _op(_operations.COUNT_TOKENS, True)),
        Target(_BETA, "Messages.count_tokens", _op(_operations.BETA_COUNT_TOKENS, False)),
        Target(_BETA, "AsyncMessages.count_tokens", _op(_operations.BETA_COUNT_TOKENS, True)),
    ]
    for name, (plain, beta) in _operations.BATCHES.items():
        for module, spec in ((_BATCHES, plain), (_BETA_BATCHES, beta)):
            out.append(Target(module, f"Batches.{name}", _op(spec, False)))
            out.append(Target(module, f"AsyncBatches.{name}", _op(spec, True)))
    return tuple(out)


#: The SDK's own hooks (the span gate and the retry loop): installed with the call targets,
#: and by the runtime's provider for a client of the app's (:func:`ensure_hooks`).
HOOKS: tuple[Target, ...] = (
    Target(_BASE, "start_api_call_span", fixed(_hooks.sdk_span_gate)),
    Target(_BASE, "SyncAPIClient._sleep_for_retry", fixed(_hooks.sleep_for_retry)),
    Target(_BASE, "AsyncAPIClient._sleep_for_retry", fixed(_hooks.asleep_for_retry)),
    Target(_BASE, "BaseClient._calculate_retry_timeout", fixed(_hooks.retry_timeout)),
)

TARGETS: tuple[Target, ...] = (
    Target(_MESSAGES, "Messages.create", _call(_specs.MESSAGES_CREATE, False)),
    Target(_MESSAGES, "AsyncMessages.create", _call(_specs.MESSAGES_CREATE, True)),
    Target(_MESSAGES, "Messages.parse", _call(_specs.MESSAGES_PARSE, False)),
    Target(_MESSAGES, "AsyncMessages.parse", _call(_specs.MESSAGES_PARSE, True)),
    Target(_MESSAGES, "Messages.stream", _helper(_specs.MESSAGES_STREAM)),
    Target(_MESSAGES, "AsyncMessages.stream", _helper(_specs.MESSAGES_STREAM)),
    Target(_BETA, "Messages.create", _call(_specs.BETA_CREATE, False)),
    Target(_BETA, "AsyncMessages.create", _call(_specs.BETA_CREATE, True)),
    Target(_BETA, "Messages.parse", _call(_specs.BETA_PARSE, False)),
    Target(_BETA, "AsyncMessages.parse", _call(_specs.BETA_PARSE, True)),
    Target(_BETA, "Messages.stream", _helper(_specs.BETA_STREAM)),
    Target(_BETA, "AsyncMessages.stream", _helper(_specs.BETA_STREAM)),
    *_operation_targets(),
    *HOOKS,
)

_PATCHER = Patcher("anthropic")


def wrap_all(handler: TelemetryHandler) -> int:
    """Patch every target whose module is imported; defer the others to their import."""
    return _PATCHER.wrap_all(TARGETS, handler)


def ensure_hooks() -> None:
    """Install the SDK-span gate and the retry hooks unless in place (they act only while one
    of our wrapped calls runs)."""
    for target in HOOKS:
        _PATCHER.ensure(target)


def unwrap_all() -> None:
    _PATCHER.unwrap_all(TARGETS)
