"""`turnout replay`: re-run a recorded run from its recording, optionally with live swaps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from turnout.cli._common import ConfigOption, console, errors, fail, settings_from, traces_dir
from turnout.errors import TurnoutError, UserError


def _graph_for(context: dict[str, Any], saver: Any) -> Any:
    """The graph a run was made with, rebuilt from what its manifest says."""
    from turnout.graphs import build_hybrid_graph
    from turnout.graphs._running import load_graph
    from turnout.graphs.refactor import build_refactor_graph

    target = context.get("target")
    if target == "hybrid":
        return build_hybrid_graph(repo=context.get("repo") or ".", checkpointer=saver)
    if target == "refactor":
        return build_refactor_graph(checkpointer=saver)
    if isinstance(target, str) and ":" in target:
        return load_graph(target, saver)
    raise UserError(
        "this run was not started by `turnout run` or `turnout refactor`, so the command line cannot "
        "rebuild its graph; replay it from Python: turnout.graphs.replay(run_id, graph)"
    )


async def _replay(run_id: str, live: list[str], from_step: int | None, force: bool, directory: Path | None) -> Any:
    from langgraph.checkpoint.memory import InMemorySaver

    from turnout.config import get_settings
    from turnout.graphs.replay import find_recorded_run, replay

    traces = traces_dir(get_settings(), directory)
    manifest = find_recorded_run(traces, run_id)
    graph = _graph_for(manifest.context, InMemorySaver())
    with errors.status(f"replaying {manifest.graph} run {manifest.run_id[:12]}…"):
        result = await replay(manifest.run_id, graph, traces_dir=traces, live=live, from_step=from_step, force=force)
    workspace = result.state.get("workspace")
    if workspace:  # a refactoring run's isolated copy: the replay's report is what matters
        from turnout.tools.workspace import Workspace

        await asyncio.to_thread(Workspace.open(Path(workspace)).remove)
    return result


def replay(
    run_id: Annotated[str, typer.Argument(help="Run id or a prefix of it (`turnout trace ls`).")],
    live: Annotated[
        Optional[list[str]],
        typer.Option("--live", help="NODE or ROLE, optionally =MODEL: answer its calls live (repeatable)."),
    ] = None,
    from_step: Annotated[Optional[int], typer.Option("--from", help="Answer every call from this graph step on live.")] = None,
    force: Annotated[bool, typer.Option(help="Replay even if the graph's structure changed since the run.")] = False,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Trace directory (default: from config).")] = None,
    config: ConfigOption = None,
) -> None:
    """Re-run a recorded run with every model call answered from its recording (no model
    needed), or some live: the replay is a new run, linked to the original."""
    try:
        settings_from(config)
        result = asyncio.run(_replay(run_id, live or [], from_step, force, directory))
    except TurnoutError as exc:
        raise fail(exc) from None
    state = result.state
    if state.get("answer"):
        console.print(state["answer"])
    status = state.get("status", "?")
    errors.print(
        f"replay of {result.original[:12]} → run {(result.run_id or 'untraced')[:12]} · status {status} · "
        f"{result.replayed_calls} call(s) from the recording, {result.live_calls} live, "
        f"{result.unused_calls} recorded call(s) not asked for"
    )
    if result.diverged:
        errors.print(f"[yellow]{result.diverged}[/]", markup=True, highlight=False)
        errors.print(f"`turnout trace diff {result.original[:12]} {(result.run_id or '')[:12]}` shows where")
        raise typer.Exit(1)
    if result.run_id:
        errors.print(f"`turnout trace diff {result.original[:12]} {result.run_id[:12]}` compares the two runs")
