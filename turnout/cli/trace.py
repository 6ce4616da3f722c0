"""`turnout trace`: read the runs recorded under the trace directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from turnout.cli._common import ConfigOption, console, errors, fail, settings_from, traces_dir
from turnout.errors import TurnoutError
from turnout.telemetry import _conventions as sc
from turnout.telemetry import _diff
from turnout.telemetry._calls import RecordingError
from turnout.telemetry._files import SpanRecord, StoredTrace, read_trace
from turnout.telemetry._runs import EgressSummary, find_run, list_runs, report

trace_app = typer.Typer(help="List, show, summarise and export recorded runs.", no_args_is_help=True)

DirOption = Annotated[
    Optional[Path], typer.Option("--dir", help="Trace directory (default: from config, .turnout/traces).")
]


def _directory(config: Path | None, directory: Path | None) -> Path:
    return directory if directory is not None else traces_dir(settings_from(config, traced=False), None)


def _load(run_id: str, config: Path | None, directory: Path | None) -> StoredTrace:
    trace = read_trace(find_run(_directory(config, directory), run_id))
    for warning in trace.warnings:
        errors.print(f"[yellow]warning:[/] {warning}")
    return trace


@trace_app.command("ls")
def list_command(config: ConfigOption = None, directory: DirOption = None) -> None:
    """Runs, newest first."""
    try:
        runs = list_runs(_directory(config, directory))
    except TurnoutError as exc:
        raise fail(exc) from None
    table = Table()
    for column in ("id", "graph", "start (UTC)", "duration", "steps", "tokens local/remote", "status"):
        table.add_column(column, no_wrap=column in ("id", "start (UTC)"))
    for run in runs:
        color = ("green" if run.status in ("ok", "succeeded", "finished", "nothing_to_change") else
                 "red" if run.status in ("error", "failed", "stuck", "baseline_failing") else "yellow")
        status = f"[{color}]{run.status}[/]"
        table.add_row(
            run.run_id[:12],
            run.graph,
            run.started.strftime("%Y-%m-%d %H:%M:%S"),
            f"{run.duration_s:.2f}s",
            str(run.steps),
            f"{run.local_tokens}/{run.remote_tokens}",
            status,
        )
    console.print(table)


def _label(span: SpanRecord) -> Text:
    a = span.attributes
    label = Text(span.name, style="bold red" if span.failed else "bold")
    label.append(f"  {span.duration_s * 1000:.0f} ms", style="dim")
    if a.get(sc.GEN_AI_OPERATION_NAME) == sc.CHAT:
        label.append(
            f"  {a.get(sc.TURNOUT_MODEL, a.get(sc.GEN_AI_REQUEST_MODEL, '?'))}"
            f" ({a.get(sc.TURNOUT_LOCALITY, '?')})"
            f"  {a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)} in / {a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)} out",
            style="cyan",
        )
    if sc.LANGGRAPH_STEP in a:
        label.append(f"  step {a[sc.LANGGRAPH_STEP]}", style="dim")
    if span.failed:
        label.append(f"  {a.get(sc.ERROR_TYPE, 'error')}: {span.status_message or ''}", style="red")
    return label


@trace_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="Run id or a prefix of it.")],
    config: ConfigOption = None,
    directory: DirOption = None,
) -> None:
    """The run as a tree: steps → model and tool calls, errors highlighted."""
    try:
        trace = _load(run_id, config, directory)
    except TurnoutError as exc:
        raise fail(exc) from None
    tree = Tree(f"run {trace.run_id}")

    def add(parent: Tree, span: SpanRecord) -> None:
        branch = parent.add(_label(span))
        for child in trace.children(span):
            add(branch, child)

    for root in trace.roots():
        add(tree, root)
    console.print(tree)


@trace_app.command("summary")
def summary_command(
    run_id: Annotated[str, typer.Argument(help="Run id or a prefix of it.")],
    config: ConfigOption = None,
    directory: DirOption = None,
) -> None:
    """Per node and per model: calls, tokens, latency, cost, and how much stayed local."""
    try:
        result = report(_load(run_id, config, directory))
    except TurnoutError as exc:
        raise fail(exc) from None
    run = result.run
    console.print(
        f"run {run.run_id[:12]} · {run.graph} · {run.status} · {run.duration_s:.2f}s · {run.steps} steps"
    )
    for title, rows in (("by node", result.by_node), ("by model", result.by_model)):
        table = Table(title=title)
        for column in ("name", "calls", "tokens in", "tokens out", "p50", "max", "cost $", "local", "errors"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row.name, str(row.calls), str(row.input_tokens), str(row.output_tokens),
                f"{row.latency_p50_s:.3f}s", f"{row.latency_max_s:.3f}s", f"{row.cost_usd:.4f}",
                f"{row.local_share:.0%}", str(row.errors),
            )
        console.print(table)
    console.print(
        f"tokens: {run.local_tokens} local, {run.remote_tokens} remote "
        f"({result.local_share:.0%} stayed on this machine)"
    )
    _print_egress(result.egress)


def _print_egress(egress: EgressSummary) -> None:
    policies = ", ".join(egress.policies) or "none recorded"
    console.print(
        f"privacy policy: {policies} · remote calls: {egress.remote_calls}"
        f" · rewritten: {egress.rewritten_calls} · refused: {egress.refused_calls}"
    )
    if egress.sent_bytes:
        by_kind = ", ".join(f"{kind} {size:,}" for kind, size in sorted(egress.sent_bytes.items()))
        console.print(f"bytes sent remotely: {sum(egress.sent_bytes.values()):,} ({by_kind})")
    style = "green" if egress.source_bytes_sent == 0 else "bold red"
    console.print(f"[{style}]source code sent remotely: {egress.source_bytes_sent:,} bytes[/]")
    if egress.unguarded_remote_calls:
        console.print(
            f"[yellow]{egress.unguarded_remote_calls} remote call(s) carry no egress record "
            "(recorded before the guard existed, or outside turnout's door)[/]"
        )


@trace_app.command("export")
def export_command(
    run_id: Annotated[str, typer.Argument(help="Run id or a prefix of it.")],
    otlp: Annotated[str, typer.Option("--otlp", help="Collector endpoint, e.g. http://127.0.0.1:4318")],
    protocol: Annotated[
        Optional[str], typer.Option(help="http/protobuf (default) or grpc.")
    ] = None,
    config: ConfigOption = None,
    directory: DirOption = None,
) -> None:
    """Re-send a stored run to an OTLP collector (Jaeger, Phoenix, Langfuse, …)."""
    from turnout.telemetry._export import export_trace

    try:
        trace = _load(run_id, config, directory)
        sent = export_trace(trace, otlp, protocol)
    except TurnoutError as exc:
        raise fail(exc) from None
    console.print(f"sent {sent} spans of run {trace.run_id[:12]} to {otlp}")


@trace_app.command("diff")
def diff_command(
    run_a: Annotated[str, typer.Argument(help="Run id or a prefix of it (A: usually the original).")],
    run_b: Annotated[str, typer.Argument(help="Run id or a prefix of it (B: usually the replay).")],
    config: ConfigOption = None,
    directory: DirOption = None,
) -> None:
    """Two runs step by step: nodes, models, tokens, durations, outputs; the first divergence."""
    try:
        traces = [_load(run_a, config, directory), _load(run_b, config, directory)]
    except TurnoutError as exc:
        raise fail(exc) from None
    calls = []
    for trace in traces:
        try:
            calls.append(_diff.recorded_calls(trace))
        except RecordingError as exc:
            errors.print(f"[yellow]warning:[/] {escape(str(exc))}; outputs are not compared")
            calls.append(None)
    result = _diff.diff_runs(*traces, *calls)
    for side, run, replayed in (("A", result.run_a, result.replay_of_a), ("B", result.run_b, result.replay_of_b)):
        console.print(f"{side}: run {run[:12]}" + (f" (replay of {replayed[:12]})" if replayed else ""))
    table = Table()
    for column in ("#", "node A / B", "models", "tokens A → B", "duration A / B", "outputs"):
        table.add_column(column, no_wrap=column in ("#", "tokens A → B", "duration A / B"))
    for index, row in enumerate(result.rows):
        a, b = row.a, row.b
        nodes = [s.node if s else "—" for s in (a, b)]
        models = [", ".join(s.models) or "—" if s else "—" for s in (a, b)]
        tokens = ["{}/{}".format(*s.tokens) if s else "—" for s in (a, b)]
        durations = [f"{s.duration_s:.3f}s" if s else "—" for s in (a, b)]
        style = "bold yellow" if index == result.first_divergence else "yellow" if row.differs else None
        table.add_row(
            str(index + 1),
            nodes[0] if nodes[0] == nodes[1] else f"{nodes[0]} / {nodes[1]}",
            models[0] if models[0] == models[1] else f"{models[0]} → {models[1]}",
            f"{tokens[0]} → {tokens[1]}",
            f"{durations[0]} / {durations[1]}",
            Text(_diff.outputs_line(row)),
            style=style,
        )
    console.print(table)
    unrecorded = [side for side, ok in (("A", result.recorded_a), ("B", result.recorded_b)) if not ok]
    if unrecorded:
        console.print(f"outputs not compared: no readable call recording for run {' and '.join(unrecorded)}")
    if result.first_divergence is None:
        console.print("[green]runs are identical step for step[/]")
    else:
        row = result.rows[result.first_divergence]
        console.print(f"[bold yellow]first divergence at row {result.first_divergence + 1}: {escape(row.describe())}[/]")
