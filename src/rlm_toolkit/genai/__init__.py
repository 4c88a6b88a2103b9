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
