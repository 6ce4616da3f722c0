"""`turnout trace diff`: two runs side by side, step by step, and where they first part ways.

Each run becomes its sequence of node executions (from the trace's node spans, with the
model calls nested under each); the two sequences are aligned on node names, so a step one
run took and the other did not shows as an insert or a delete rather than shifting every
row after it. Outputs come from the call recordings (`calls/<trace id>.jsonl`) joined by
chat span id; a run recorded without them is still compared on nodes, models and tokens.
Pure functions over stored traces, so the diff is the same from Python, the CLI or a test.
"""

from __future__ import annotations

import difflib
import json
from typing import Literal

from pydantic import BaseModel

from turnout.telemetry import _conventions as sc
from turnout.telemetry._calls import CallRecord, calls_path, read_calls
from turnout.telemetry._files import SpanRecord, StoredTrace
from turnout.telemetry._runs import enclosing_node, is_model_call, model_of

Aspect = Literal["node", "models", "tokens", "outputs"]
OUTSIDE = "(outside any node)"


class StepCall(BaseModel):
    """One model call made inside a step."""

    span_id: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    output: str | None = None  # None: not recorded (no recording, or the call failed)
    error: str | None = None


class Step(BaseModel):
    """One node execution of a run, with the model calls nested under it."""

    node: str
    step: int | None = None
    span_id: str
    duration_s: float
    calls: list[StepCall] = []

    @property
    def models(self) -> list[str]:
        return [c.model for c in self.calls]

    @property
    def tokens(self) -> tuple[int, int]:
        return sum(c.input_tokens for c in self.calls), sum(c.output_tokens for c in self.calls)

    @property
    def outputs(self) -> list[str | None]:
        return [c.output if c.error is None else f"(failed: {c.error})" for c in self.calls]


class DiffRow(BaseModel):
    """A pair of aligned steps, or a step only one run took (`a` or `b` is then None)."""

    kind: Literal["same", "changed", "insert", "delete"]
    a: Step | None = None
    b: Step | None = None
    differences: list[Aspect] = []
    outputs: Literal["same", "differ", "not recorded", "none"] = "none"

    @property
    def differs(self) -> bool:
        return self.kind != "same"

    def describe(self) -> str:
        """What differs, in a few words: `code: outputs differ`, `fix only in B`."""
        if self.a is None:
            return f"{self.b.node if self.b else '?'} only in B"
        if self.b is None:
            return f"{self.a.node} only in A"
        if "node" in self.differences:
            rest = [d for d in self.differences if d != "node"]
            return f"A ran {self.a.node}, B ran {self.b.node}" + (f" ({', '.join(rest)} differ)" if rest else "")
        return f"{self.a.node}: {', '.join(self.differences) or 'nothing'} differ"


class RunDiff(BaseModel):
    run_a: str
    run_b: str
    replay_of_a: str | None = None  # `turnout.replay.of` on the run's root span
    replay_of_b: str | None = None
    recorded_a: bool
    recorded_b: bool
    rows: list[DiffRow]
    first_divergence: int | None = None  # index into rows

    @property
    def identical(self) -> bool:
        return self.first_divergence is None


def steps(trace: StoredTrace, calls: list[CallRecord] | None = None) -> list[Step]:
    """The run's node executions in start order (ties: step, then name), each with the model
    calls whose nearest enclosing node span it is, and their outputs when recorded. A model
    call outside any node (`turnout ask`, a script) is a step of its own, OUTSIDE."""
    by_id = {s.span_id: s for s in trace.spans}
    texts = {c.span_id: c.text for c in calls or []}
    nested: dict[str, list[SpanRecord]] = {}
    owners = [s for s in trace.spans if sc.LANGGRAPH_NODE in s.attributes]
    for span in trace.spans:
        if is_model_call(span):
            node = enclosing_node(span, by_id)
            if node is None:
                owners.append(node := span)
            nested.setdefault(node.span_id, []).append(span)
    owners.sort(key=lambda s: (s.start_ns, _step(s) if _step(s) is not None else -1, s.name, s.span_id))
    return [
        Step(
            node=str(s.attributes.get(sc.LANGGRAPH_NODE, OUTSIDE)),
            step=_step(s),
            span_id=s.span_id,
            duration_s=s.duration_s,
            calls=[_call(c, texts) for c in sorted(nested.get(s.span_id, []), key=lambda c: (c.start_ns, c.span_id))],
        )
        for s in owners
    ]


def diff_runs(
    a: StoredTrace,
    b: StoredTrace,
    calls_a: list[CallRecord] | None,
    calls_b: list[CallRecord] | None,
) -> RunDiff:
    """Align the two runs' steps on node names and mark what differs in each aligned pair.

    Durations never count as a difference; outputs count only when both runs were recorded."""
    steps_a, steps_b = steps(a, calls_a), steps(b, calls_b)
    recorded = calls_a is not None and calls_b is not None
    matcher = difflib.SequenceMatcher(None, [s.node for s in steps_a], [s.node for s in steps_b], autojunk=False)
    rows: list[DiffRow] = []
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        pairs = list(zip(steps_a[i1:i2], steps_b[j1:j2]))
        rows += [_compare(x, y, recorded) for x, y in pairs]
        rows += [DiffRow(kind="delete", a=x) for x in steps_a[i1 + len(pairs) : i2]]
        rows += [DiffRow(kind="insert", b=y) for y in steps_b[j1 + len(pairs) : j2]]
    return RunDiff(
        run_a=a.run_id,
        run_b=b.run_id,
        replay_of_a=_replay_of(a),
        replay_of_b=_replay_of(b),
        recorded_a=calls_a is not None,
        recorded_b=calls_b is not None,
        rows=rows,
        first_divergence=next((i for i, row in enumerate(rows) if row.differs), None),
    )


def recorded_calls(trace: StoredTrace) -> list[CallRecord] | None:
    """The run's call recording beside its trace file, or None when it has none (old runs,
    `record_calls = false`); a corrupt one raises RecordingError."""
    path = calls_path(trace.path.parent, trace.run_id)
    return read_calls(path) if path.is_file() else None


def excerpt(text: str | None, width: int = 48) -> str:
    """One line of an output: JSON compacted (a router's choice reads `{"route":"code"}`),
    whitespace collapsed, cut at `width` characters."""
    if text is None:
        return "(not recorded)"
    try:
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def outputs_line(row: DiffRow, width: int = 32) -> str:
    """The outputs cell of a row: `same`, `differ: A …` over `B …`, `only B: …`, `not recorded`, `—`."""
    if row.a is None or row.b is None:
        step = row.a or row.b
        if step is None or not step.calls:
            return "—"
        return f"only {'A' if row.a else 'B'}: {excerpt(step.outputs[0], width)}"
    if row.outputs == "differ":
        x, y = first_difference(row)
        return f"differ: A {excerpt(x, width)}\n        B {excerpt(y, width)}"
    return "—" if row.outputs == "none" else row.outputs


def first_difference(row: DiffRow) -> tuple[str | None, str | None]:
    """The first pair of outputs that differ in a row (None on a side that lacks it)."""
    outputs_a = row.a.outputs if row.a else []
    outputs_b = row.b.outputs if row.b else []
    for index in range(max(len(outputs_a), len(outputs_b))):
        x = outputs_a[index] if index < len(outputs_a) else None
        y = outputs_b[index] if index < len(outputs_b) else None
        if x != y:
            return x, y
    return None, None


def _compare(x: Step, y: Step, recorded: bool) -> DiffRow:
    differences: list[Aspect] = []
    if x.node != y.node:
        differences.append("node")
    if x.models != y.models:
        differences.append("models")
    if x.tokens != y.tokens:
        differences.append("tokens")
    if not x.calls and not y.calls:
        outputs = "none"
    elif not recorded:
        outputs = "not recorded"
    elif x.outputs == y.outputs:
        outputs = "same"
    else:
        outputs = "differ"
        differences.append("outputs")
    return DiffRow(kind="changed" if differences else "same", a=x, b=y, differences=differences, outputs=outputs)


def _call(span: SpanRecord, texts: dict[str, str]) -> StepCall:
    a = span.attributes
    return StepCall(
        span_id=span.span_id,
        model=model_of(span) or "?",
        input_tokens=int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)),
        output_tokens=int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
        output=texts.get(span.span_id),
        error=str(a.get(sc.ERROR_TYPE, "error")) if span.failed else None,
    )


def _step(span: SpanRecord) -> int | None:
    step = span.attributes.get(sc.LANGGRAPH_STEP)
    return step if isinstance(step, int) else None


def _replay_of(trace: StoredTrace) -> str | None:
    for root in trace.roots():
        if sc.TURNOUT_REPLAY_OF in root.attributes:
            return str(root.attributes[sc.TURNOUT_REPLAY_OF])
    return None
