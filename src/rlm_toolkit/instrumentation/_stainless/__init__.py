"""What the Stainless-generated SDK clients (``openai``, ``anthropic``) share, for their
instrumentations: the patch table walker (wrap, defer to import, unwrap symmetrically), the
result kinds of a call (streams, raw and streaming responses) and the raw-stream proxy.

Nothing here imports an SDK at module level; each instrumentation names its SDK's modules.
"""

from __future__ import annotations

__all__: list[str] = []
