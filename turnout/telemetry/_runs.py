"""What `turnout trace` shows: run listings, per-node and per-model summaries, run lookup."""

from __future__ import annotations

import difflib
import statistics
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from turnout.errors import UnknownRun
from turnout.telemetry import _conventions as sc
from turnout.telemetry._files import SpanRecord, StoredTrace, read_trace, trace_files


class RunSummary(BaseModel):
    run_id: str
    graph: str
    started: datetime
    duration_s: float
    steps: int
    local_tokens: int
    remote_tokens: int
    status: str


class CallStats(BaseModel):
    """Model calls grouped by node or by model."""

    name: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    local_tokens: int = 0
    cost_usd: float = 0.0
    latency_p50_s: float = 0.0
    latency_max_s: float = 0.0
    errors: int = 0

    @property
    def local_share(self) -> float:
        total = self.input_tokens + self.output_tokens
        return self.local_tokens / total if total else 1.0


class EgressSummary(BaseModel):
    """What a run sent off the machine, from the egress guard's span attributes."""

    policies: list[str] = []
    remote_calls: int = 0
    refused_calls: int = 0
    rewritten_calls: int = 0
    sent_bytes: dict[str, int] = {}
    source_bytes_sent: int = 0
    unguarded_remote_calls: int = 0  # remote calls whose span has no egress record


class RunReport(BaseModel):
    run: RunSummary
    by_node: list[CallStats]
    by_model: list[CallStats]
    egress: EgressSummary = EgressSummary()

    @property
    def local_share(self) -> float:
        total = self.run.local_tokens + self.run.remote_tokens
        return self.run.local_tokens / total if total else 1.0


def is_model_call(span: SpanRecord) -> bool:
    return span.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.CHAT


def tokens(span: SpanRecord) -> int:
    return int(span.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)) + int(
        span.attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)
    )


def summarize(trace: StoredTrace) -> RunSummary:
    roots = trace.roots()
    root = roots[0] if roots else None
    graph = "?"
    if root is not None:
        graph = str(root.attributes.get(sc.GEN_AI_WORKFLOW_NAME) or root.name)
    calls = [s for s in trace.spans if is_model_call(s)]
    local = sum(tokens(s) for s in calls if s.attributes.get(sc.TURNOUT_LOCALITY) == "local")
    start = min((s.start_ns for s in trace.spans), default=0)
    end = max((s.end_ns for s in trace.spans), default=0)
    ended = str(root.attributes.get(sc.TURNOUT_RUN_STATUS) or "") if root is not None else ""
    if any(r.failed for r in roots) and ended not in sc.UNSUCCESSFUL_RUN_STATUSES:  # raised, not a status its graph returned
        status = "error"
    elif trace.warnings or len(roots) != 1:
        status = "incomplete"
    else:  # how the run ended, where its graph says (a run that raised nothing may still have failed)
        status = str((root.attributes.get(sc.TURNOUT_RUN_STATUS) if root else None) or "ok")
    return RunSummary(
        run_id=trace.run_id,
        graph=graph,
        started=datetime.fromtimestamp(start / 1e9, tz=timezone.utc),
        duration_s=(end - start) / 1e9,
        steps=sum(1 for s in trace.spans if sc.LANGGRAPH_NODE in s.attributes),
        local_tokens=local,
        remote_tokens=sum(tokens(s) for s in calls) - local,
        status=status,
    )


def list_runs(directory: Path) -> list[RunSummary]:
    """Every stored run, newest first."""
    runs = [summarize(read_trace(path)) for path in trace_files(directory)]
    return sorted(runs, key=lambda r: r.started, reverse=True)


def find_run(directory: Path, run_id: str) -> Path:
    """The trace file of the run whose id starts with `run_id`."""
    files = trace_files(directory)
    matches = [p for p in files if p.stem.startswith(run_id.lower())]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(p.stem[:12] for p in matches[:5])
        raise UnknownRun(f"run id {run_id!r} is ambiguous ({listed}…); give more characters")
    if not files:
        raise UnknownRun(f"no runs in {directory}: run a graph or `turnout ask` first")
    ids = [p.stem for p in files]
    close = difflib.get_close_matches(run_id.lower(), [i[: len(run_id)] for i in ids], n=3, cutoff=0.3)
    suggestions = [i for i in ids if any(i.startswith(c) for c in close)][:3] or ids[:3]
    raise UnknownRun(
        f"no run {run_id!r} in {directory}; closest: {', '.join(i[:12] for i in suggestions)} "
        "(`turnout trace ls` lists them all)"
    )


def enclosing_node(span: SpanRecord, by_id: dict[str, SpanRecord]) -> SpanRecord | None:
    """The nearest ancestor span of a graph node, if any."""
    parent = by_id.get(span.parent_id or "")
    while parent is not None and not parent.attributes.get(sc.LANGGRAPH_NODE):
        parent = by_id.get(parent.parent_id or "")
    return parent


def model_of(span: SpanRecord) -> str | None:
    """The model a chat span called: the one that answered, else the one requested."""
    model = span.attributes.get(sc.TURNOUT_MODEL) or span.attributes.get(sc.GEN_AI_REQUEST_MODEL)
    return str(model) if model else None


def _node_of(span: SpanRecord, by_id: dict[str, SpanRecord]) -> str:
    node = enclosing_node(span, by_id)
    return str(node.attributes[sc.LANGGRAPH_NODE]) if node is not None else "(outside any node)"


def _stats(name: str, calls: list[SpanRecord]) -> CallStats:
    latencies = [s.duration_s for s in calls]
    return CallStats(
        name=name,
        calls=len(calls),
        input_tokens=sum(int(s.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)) for s in calls),
        output_tokens=sum(int(s.attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)) for s in calls),
        local_tokens=sum(tokens(s) for s in calls if s.attributes.get(sc.TURNOUT_LOCALITY) == "local"),
        cost_usd=sum(float(s.attributes.get(sc.TURNOUT_COST_USD, 0.0)) for s in calls),
        latency_p50_s=statistics.median(latencies) if latencies else 0.0,
        latency_max_s=max(latencies, default=0.0),
        errors=sum(1 for s in calls if s.failed),
    )


def egress_summary(calls: list[SpanRecord]) -> EgressSummary:
    summary = EgressSummary()
    policies: dict[str, None] = {}
    prefix = sc.EGRESS_SENT_BYTES + "."
    for span in calls:
        a = span.attributes
        decision = a.get(sc.EGRESS_DECISION)
        if decision is None:
            summary.unguarded_remote_calls += a.get(sc.TURNOUT_LOCALITY) == "remote"
            continue
        policies[str(a.get(sc.EGRESS_POLICY))] = None
        summary.refused_calls += decision == "refused"
        summary.rewritten_calls += decision == "rewritten"
        summary.remote_calls += int(a.get(sc.EGRESS_SENT_BYTES, 0)) > 0
        summary.source_bytes_sent += int(a.get(sc.EGRESS_SOURCE_BYTES, 0))
        for key, value in a.items():
            if key.startswith(prefix):
                kind = key[len(prefix):]
                summary.sent_bytes[kind] = summary.sent_bytes.get(kind, 0) + int(value)
    summary.policies = list(policies)
    return summary


def report(trace: StoredTrace) -> RunReport:
    by_id = {s.span_id: s for s in trace.spans}
    by_node: dict[str, list[SpanRecord]] = defaultdict(list)
    by_model: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in trace.spans:
        if is_model_call(span):
            by_node[_node_of(span, by_id)].append(span)
            by_model[str(model_of(span))].append(span)
    return RunReport(
        run=summarize(trace),
        by_node=[_stats(name, calls) for name, calls in by_node.items()],
        by_model=[_stats(name, calls) for name, calls in by_model.items()],
        # model calls, and tool results `turnout mcp` returned to its client
        egress=egress_summary([s for s in trace.spans if is_model_call(s) or sc.EGRESS_DECISION in s.attributes]),
    )
