"""The provider-agnostic GenAI telemetry layer.

Invocation lifecycles (start/stop/fail, exactly-once end) of the three span kinds: an
inference (:class:`Invocation`), an agent run (:class:`AgentInvocation`) and a tool execution
(:class:`ToolInvocation`), metric instruments with the
conventions' bucket advice, content policy and serialisation, event emission (span event +
Logs-API record with the in-process payload exposed only during the SDK hook), and the stream
proxy base shared by sync and async streams.

Why our own layer and not ``opentelemetry-util-genai``: it is not a dependency we ship (0.x,
API still moving between releases), its handler allocates its own invocation/message types per
call and converts them again on end, which costs more than the budget we set for a
non-streaming call (~1.3x a bare span + metric records); and it has no notion of our
in-process ``Payload``/``Scope`` routing (our ``TelemetryHandler`` owns it), retry events or stream end reasons. We keep the same
*shape* (an invocation object with start/stop/fail, the v1.41 attribute and metric names, the
conventions' JSON message schema), so switching later is a contained change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlm_toolkit._lazy import lazy_exports

# Every name loads on first use: the runtime needs the handler and the invocation types to
# build an ``RLM``, but not the stream proxies (``wrapt``, which pulls ``asyncio`` and
# ``importlib.metadata``) nor the processor discovery (the OpenTelemetry SDK), and a module
# importing ``rlm_toolkit.genai._reaper`` should not pay for the rest of the package.
if TYPE_CHECKING:
    from rlm_toolkit.genai._agent import AgentInvocation, ToolInvocation
    from rlm_toolkit.genai._content import (
        ContentMode,
        resolve_content_mode,
        resolve_max_length,
        to_json,
        truncate_messages,
    )
    from rlm_toolkit.genai._context import (
        Payload,
        Scope,
        current_payload,
        current_scope,
        payload_during,
        use_scope,
    )
    from rlm_toolkit.genai._cost import CostEstimator
    from rlm_toolkit.genai._discovery import check_processor_discovery, discovery_problems
    from rlm_toolkit.genai._eval import (
        RunClaim,
        claim_run_links,
        emit_evaluation,
        eval_carrier,
        link_from_carrier,
        linked_run,
        start_eval_span,
    )
    from rlm_toolkit.genai._handler import (
        Consumer,
        TelemetryHandler,
        Wants,
        log_processors_of,
        span_processors_of,
    )
    from rlm_toolkit.genai._instruments import Instruments
    from rlm_toolkit.genai._invocation import Invocation
    from rlm_toolkit.genai._reaper import end_abandoned_streams
    from rlm_toolkit.genai._stream import (
        AsyncStreamProxy,
        ChunkHandler,
        StreamState,
        SyncStreamProxy,
        stream_state_of,
    )

__all__ = [
    "AgentInvocation",
    "AsyncStreamProxy",
    "ChunkHandler",
    "Consumer",
    "ContentMode",
    "CostEstimator",
    "Instruments",
    "Invocation",
    "Payload",
    "RunClaim",
    "Scope",
    "StreamState",
    "SyncStreamProxy",
    "TelemetryHandler",
    "ToolInvocation",
    "Wants",
    "check_processor_discovery",
    "claim_run_links",
    "current_payload",
    "current_scope",
    "discovery_problems",
    "emit_evaluation",
    "end_abandoned_streams",
    "eval_carrier",
    "link_from_carrier",
    "linked_run",
    "log_processors_of",
    "payload_during",
    "resolve_content_mode",
    "resolve_max_length",
    "span_processors_of",
    "start_eval_span",
    "stream_state_of",
    "to_json",
    "truncate_messages",
    "use_scope",
]

_LAZY = {
    "AgentInvocation": "rlm_toolkit.genai._agent",
    "AsyncStreamProxy": "rlm_toolkit.genai._stream",
    "ChunkHandler": "rlm_toolkit.genai._stream",
    "Consumer": "rlm_toolkit.genai._handler",
    "ContentMode": "rlm_toolkit.genai._content",
    "CostEstimator": "rlm_toolkit.genai._cost",
    "Instruments": "rlm_toolkit.genai._instruments",
    "Invocation": "rlm_toolkit.genai._invocation",
    "Payload": "rlm_toolkit.genai._context",
    "RunClaim": "rlm_toolkit.genai._eval",
    "Scope": "rlm_toolkit.genai._context",
    "StreamState": "rlm_toolkit.genai._stream",
    "SyncStreamProxy": "rlm_toolkit.genai._stream",
    "TelemetryHandler": "rlm_toolkit.genai._handler",
    "ToolInvocation": "rlm_toolkit.genai._agent",
    "Wants": "rlm_toolkit.genai._handler",
    "check_processor_discovery": "rlm_toolkit.genai._discovery",
    "claim_run_links": "rlm_toolkit.genai._eval",
    "current_payload": "rlm_toolkit.genai._context",
    "current_scope": "rlm_toolkit.genai._context",
    "discovery_problems": "rlm_toolkit.genai._discovery",
    "emit_evaluation": "rlm_toolkit.genai._eval",
    "end_abandoned_streams": "rlm_toolkit.genai._reaper",
    "eval_carrier": "rlm_toolkit.genai._eval",
    "link_from_carrier": "rlm_toolkit.genai._eval",
    "linked_run": "rlm_toolkit.genai._eval",
    "log_processors_of": "rlm_toolkit.genai._handler",
    "payload_during": "rlm_toolkit.genai._context",
    "resolve_content_mode": "rlm_toolkit.genai._content",
    "resolve_max_length": "rlm_toolkit.genai._content",
    "span_processors_of": "rlm_toolkit.genai._handler",
    "start_eval_span": "rlm_toolkit.genai._eval",
    "stream_state_of": "rlm_toolkit.genai._stream",
    "to_json": "rlm_toolkit.genai._content",
    "truncate_messages": "rlm_toolkit.genai._content",
    "use_scope": "rlm_toolkit.genai._context",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
