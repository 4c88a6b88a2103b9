"""Render spans as rich trace trees (used by ``ConsoleTreeExporter``; rich is imported here only)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import IO, Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.semconv._incubating.attributes import error_attributes, gen_ai_attributes, http_attributes
from opentelemetry.semconv.attributes import exception_attributes, service_attributes
from opentelemetry.trace import StatusCode
from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from rlm_toolkit import attributes as rlm
from rlm_toolkit.exporters._totals import Totals, is_llm_call, is_root

BAR_WIDTH = 24  # on consoles of 120+ columns; narrower ones get shorter bars
_EXCEPTION_EVENT = "exception"
_OPERATION = gen_ai_attributes.GenAiOperationNameValues
_SpanKey = tuple[int, int]


def _fmt_cost(cost: float) -> str:
    return "<$0.000001" if 0 < cost < 0.0000005 else f"${cost:.6f}"


def _fmt_duration(nanos: int) -> str:
    ms = nanos / 1e6
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def _duration(span: ReadableSpan) -> int:
    return max((span.end_time or 0) - (span.start_time or 0), 0)


def _bar(span: ReadableSpan, t0: int, total: int, width: int) -> Text:
    start = (span.start_time or t0) - t0
    offset = min(int(start / total * width), width - 1) if total else 0
    length = max(1, round(_duration(span) / total * width)) if total else width
    length = min(length, width - offset)
    bar = Text("·" * offset, style="dim")
    bar.append("━" * length, style="red" if _failed(span) else "green")
    bar.append("·" * (width - offset - length), style="dim")
    return bar


def _failed(span: ReadableSpan) -> bool:
    return span.status.status_code is StatusCode.ERROR


def _label(span: ReadableSpan, depth: int, name_width: int, t0: int, total: int, bar_width: int) -> Text:
    attrs: Mapping[str, Any] = span.attributes or {}
    failed = _failed(span)
    text = Text()
    text.append(
        span.name.ljust(max(name_width - 4 * depth, len(span.name))), style="bold red" if failed else "bold"
    )
    text.append("  ")
    text.append_text(_bar(span, t0, total, bar_width))
    text.append(f" {_fmt_duration(_duration(span)):>7}")
    model = attrs.get(gen_ai_attributes.GEN_AI_RESPONSE_MODEL) or attrs.get(
        gen_ai_attributes.GEN_AI_REQUEST_MODEL
    )
    if model and str(model) not in span.name:
        text.append(f"  {model}", style="cyan")
    tokens_in = attrs.get(gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS)
    tokens_out = attrs.get(gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS)
    if attrs.get(gen_ai_attributes.GEN_AI_OPERATION_NAME) == _OPERATION.EMBEDDINGS.value:
        if tokens_in is not None:  # embeddings have no output tokens
            text.append(f"  {tokens_in} tok in", style="magenta")
    elif tokens_in is not None or tokens_out is not None:
        text.append(f"  {tokens_in or 0}→{tokens_out or 0} tok", style="magenta")
    cost = attrs.get(rlm.GEN_AI_USAGE_COST)
    if isinstance(cost, (int, float)):
        text.append(f"  {_fmt_cost(float(cost))}", style="yellow")
    ttfc = attrs.get(gen_ai_attributes.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    chunks = attrs.get(rlm.RLM_STREAM_CHUNK_COUNT)
    if chunks is not None:
        first = f", 1st {float(ttfc) * 1000:.0f} ms" if isinstance(ttfc, (int, float)) else ""
        text.append(f"  stream ×{chunks}{first}", style="blue")
    level = attrs.get(rlm.RLM_SANDBOX_LEVEL)
    if level and attrs.get(gen_ai_attributes.GEN_AI_OPERATION_NAME) == _OPERATION.INVOKE_AGENT.value:
        # On the run line only (its execute_tool spans carry it too): how confined the code was.
        text.append(f"  sandbox {level}", style="dim")
    attempts = attrs.get(rlm.RLM_REQUEST_ATTEMPTS)
    if isinstance(attempts, int) and attempts > 1:
        text.append(f"  {attempts} attempts", style="yellow")
    if failed:
        error = attrs.get(error_attributes.ERROR_TYPE) or "error"
        message = f": {span.status.description}" if span.status.description else ""
        text.append(f"  ✗ {error}{message}", style="bold red")
    return text


def _event_label(event: Event) -> Text | None:
    attrs: Mapping[str, Any] = event.attributes or {}
    if event.name == rlm.EVENT_RETRY:
        text = Text(f"↻ retry {attrs.get(rlm.RLM_RETRY_ATTEMPT, '?')}", style="yellow")
        # max_retries (older recordings: the same value under rlm.retry.max_attempts)
        limit = attrs.get(rlm.RLM_RETRY_MAX_RETRIES, attrs.get(rlm.RLM_RETRY_MAX_ATTEMPTS_OLD))
        if limit is not None:
            text.append(f"/{limit}")
        delay = attrs.get(rlm.RLM_RETRY_DELAY)
        if isinstance(delay, (int, float)):
            text.append(f" in {delay:.2f} s")
        reason = [
            str(v)
            for v in (
                attrs.get(http_attributes.HTTP_RESPONSE_STATUS_CODE),
                attrs.get(error_attributes.ERROR_TYPE),
            )
            if v
        ]
        if reason:
            text.append(f" ({' '.join(reason)})")
        return text
    if event.name == _EXCEPTION_EVENT:
        kind = attrs.get(exception_attributes.EXCEPTION_TYPE, "exception")
        message = str(attrs.get(exception_attributes.EXCEPTION_MESSAGE, ""))[:200]
        return Text(f"✗ {kind}: {message}", style="red")
    return Text(f"• {event.name}", style="dim")


def _trace_tree(spans: Sequence[ReadableSpan], bar_width: int) -> Tree:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in by_id else None
        children[parent].append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)

    depths: dict[int, int] = {}
    order: list[tuple[ReadableSpan, int]] = []
    stack = [(s, 0) for s in reversed(children[None])]
    while stack:
        span, depth = stack.pop()
        order.append((span, depth))
        if span.context is not None:
            depths[span.context.span_id] = depth
            stack.extend((c, depth + 1) for c in reversed(children[span.context.span_id]))
    t0 = min((s.start_time or 0) for s in spans)
    t1 = max((s.end_time or 0) for s in spans)
    total = max(t1 - t0, 1)
    name_width = min(max(len(s.name) + 4 * d for s, d in order), 44)

    first = spans[0]
    service = (first.resource.attributes if first.resource else {}).get(service_attributes.SERVICE_NAME, "")
    trace_id = f"{first.context.trace_id:032x}" if first.context else "?"
    header = Text(f"trace {trace_id[:12]}… ", style="bold")
    header.append(f"{service}  ", style="dim")
    header.append(f"{len(spans)} span{'s' if len(spans) != 1 else ''}  {_fmt_duration(t1 - t0)}", style="dim")
    tree = Tree(header, guide_style="dim")
    nodes: dict[int | None, Tree] = {None: tree}
    for span, depth in order:
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in by_id else None
        node = nodes[parent].add(_label(span, depth, name_width, t0, total, bar_width))
        for event in span.events:
            label = _event_label(event)
            if label is not None:
                node.add(label)
        if span.context is not None:
            nodes[span.context.span_id] = node
    return tree


def _key(span: ReadableSpan) -> _SpanKey | None:
    return (span.context.trace_id, span.context.span_id) if span.context is not None else None


def _innermost(spans: Sequence[ReadableSpan], selected: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The ``selected`` spans none of whose descendants (in ``spans``) is also selected.

    An LLM span wrapping another (e.g. a framework's chat span around the SDK call) is one call,
    and a run that fails because its LLM call failed is one error: count the innermost only.
    """
    parent_of: dict[_SpanKey, _SpanKey] = {}
    for span in spans:
        key = _key(span)
        if key is not None and span.parent is not None:
            parent_of[key] = (key[0], span.parent.span_id)
    covered: set[_SpanKey] = set()
    for span in selected:
        key = _key(span)
        seen: set[_SpanKey] = set()
        while key is not None and key in parent_of and key not in seen:
            seen.add(key)
            key = parent_of[key]
            covered.add(key)
    return [s for s in selected if _key(s) not in covered]


def _summary(spans: Sequence[ReadableSpan], dropped: int) -> Text:
    calls = _innermost(spans, [s for s in spans if is_llm_call(s)])
    totals = Totals()
    totals.calls = len(calls)
    for span in calls:
        attrs: Mapping[str, Any] = span.attributes or {}
        totals.tokens_in += int(attrs.get(gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS) or 0)
        totals.tokens_out += int(attrs.get(gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS) or 0)
        value = attrs.get(rlm.GEN_AI_USAGE_COST)
        totals.cost += float(value) if isinstance(value, (int, float)) else 0.0
    totals.errors = len(_innermost(spans, [s for s in spans if _failed(s)]))
    totals.retries = sum(1 for span in spans for e in span.events if e.name == rlm.EVENT_RETRY)
    text = _totals_line(totals)
    if dropped:
        text.append(f" · {dropped} spans not shown (limit reached)", style="dim")
    return text


def _totals_line(totals: Totals) -> Text:
    text = Text("Σ ", style="bold")
    count = totals.calls
    text.append(
        f"{count} LLM call{'s' if count != 1 else ''} · {totals.tokens_in} in / {totals.tokens_out} out tokens"
    )
    if totals.cost:
        text.append(f" · {_fmt_cost(totals.cost)}", style="yellow")
    if totals.retries:
        text.append(f" · {totals.retries} retr{'ies' if totals.retries != 1 else 'y'}", style="yellow")
    if totals.errors:
        text.append(f" · {totals.errors} error{'s' if totals.errors != 1 else ''}", style="bold red")
    return text


def _omitted(shown: int, shown_roots: int, totals: Totals) -> tuple[int, int]:
    return totals.spans - shown, max(totals.traces - shown_roots, 0)


def _trees(spans: Sequence[ReadableSpan], bar_width: int) -> list[Tree]:
    traces: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        traces[span.context.trace_id if span.context else 0].append(span)
    ordered = sorted(traces.values(), key=lambda group: min(s.start_time or 0 for s in group))
    return [_trace_tree(group, bar_width) for group in ordered]


def build(
    spans: Sequence[ReadableSpan],
    dropped: int = 0,
    width: int = 120,
    *,
    totals: Totals | None = None,
    tail: Sequence[ReadableSpan] = (),
) -> Group:
    """The tree of ``spans`` (and, after a line saying what was left out, of ``tail``), then
    the summary: of ``totals`` (every span of the run) when given, else of the spans shown."""
    bar_width = BAR_WIDTH if width >= 120 else 12 if width >= 100 else 6
    title = Text("── rlm-toolkit telemetry ──", style="bold blue")
    parts: list[Any] = [title, *_trees(spans, bar_width)]
    if totals is None:
        parts.append(_summary([*spans, *tail], dropped))
        return Group(*parts)
    shown = [*spans, *tail]
    omitted_spans, omitted_traces = _omitted(len(shown), sum(1 for s in shown if is_root(s)), totals)
    if omitted_spans:
        parts.append(
            Text(
                f"⋯ {omitted_spans} span{'s' if omitted_spans != 1 else ''} "
                f"({omitted_traces} whole trace{'s' if omitted_traces != 1 else ''}) not shown: "
                f"the first {len(spans)} and the last {len(tail)} of {totals.spans} are ⋯",
                style="dim",
            )
        )
    parts.extend(_trees(tail, bar_width))
    line = _totals_line(totals)
    if omitted_spans:  # the totals cover every span; say so when not all are on screen
        line.append(
            f" · {totals.spans} spans in {totals.traces} traces, {omitted_spans} not shown", style="dim"
        )
    parts.append(line)
    return Group(*parts)


def print_traces(
    spans: Sequence[ReadableSpan],
    dropped: int,
    *,
    file: IO[str],
    width: int | None,
    color: bool | None,
    totals: Totals | None = None,
    tail: Sequence[ReadableSpan] = (),
) -> None:
    console = Console(
        file=file,
        width=width or (None if file.isatty() else 160),
        no_color=None if color is None else not color,
        force_terminal=color,
        highlight=False,
        soft_wrap=False,
    )
    console.print(build(spans, dropped, console.width, totals=totals, tail=tail))
    file.flush()


def render_text(spans: Sequence[ReadableSpan], dropped: int = 0, *, width: int = 120) -> str:
    import io

    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False, soft_wrap=False).print(
        build(spans, dropped, width)
    )
    return buffer.getvalue()
