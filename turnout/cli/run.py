"""`turnout run`: run the hybrid graph, or a user's own graph, with live progress."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from turnout.cli._common import (
    CheckpointerOption,
    ConfigOption,
    OfflineOption,
    PolicyOption,
    console,
    egress_line,
    errors,
    fail,
    settings_from,
)
from turnout.engines import UsageTotals, usage_meter
from turnout.errors import TurnoutError, UserError


class Progress:
    """What the live line shows: current node, steps done, tokens local/remote."""

    def __init__(self) -> None:
        self.node = "starting"
        self.steps = 0
        self.local = 0
        self.remote = 0

    def update(self, node: str, values: Any) -> None:
        self.node = node
        if isinstance(values, dict):
            self.steps += len(values.get("results") or [])
            usage = values.get("usage")
            if usage is not None:
                self.local += usage.local_tokens
                self.remote += usage.remote_tokens

    def render(self) -> Text:
        return Text.assemble(
            ("▶ ", "cyan"), (self.node, "bold"),
            f"  steps {self.steps}  tokens local {self.local} / remote {self.remote}",
        )


def _summary(values: dict[str, Any], thread_id: str, policy: str, sent: UsageTotals) -> None:
    status = values.get("status", "done")
    color = {"finished": "green", "unanswered": "yellow", "stuck": "yellow", "budget_exceeded": "yellow"}.get(status, "white")
    if values.get("answer"):
        console.print(values["answer"])
    results = sorted(values.get("results") or [], key=lambda r: (r.round, r.index))
    if results:
        table = Table(title="steps", show_lines=False)
        for column in ("round", "step", "kind", "agent", "tier", "status", "summary"):
            table.add_column(column, overflow="fold" if column == "summary" else "ellipsis")
        for r in results:
            table.add_row(str(r.round), str(r.index), r.kind, r.agent, r.tier, r.status, r.summary[:160])
        console.print(table)
    usage = values.get("usage")
    tokens = f" · tokens local {usage.local_tokens} / remote {usage.remote_tokens}" if usage else ""
    reason = f" ({values['reason']})" if values.get("reason") else ""
    broken = [r for r in results if r.status != "ok"]
    kinds = ", ".join(f"{sum(r.status == s for r in broken)} {s}" for s in sorted({r.status for r in broken}))
    failed = f" · {len(broken)} of {len(results)} steps not ok ({kinds})" if broken else ""
    errors.print(f"[{color}]{status}[/]{reason}{failed}{tokens} · thread {thread_id} · `turnout trace ls` for the trace")
    errors.print(egress_line(sent, policy), soft_wrap=True)


async def _execute(graph: Any, payload: Any, thread_id: str) -> dict[str, Any]:
    from langgraph.types import Command

    from turnout.graphs._running import thread_config

    config = thread_config(thread_id)
    progress = Progress()
    with Live(progress.render(), console=errors, transient=True, refresh_per_second=8) as live:
        while True:
            async for update in graph.astream(payload, config, stream_mode="updates"):
                for node, values in update.items():
                    if node == "__interrupt__":
                        continue
                    progress.update(node, values)
                live.update(progress.render())
            snapshot = await graph.aget_state(config)
            pending = [i for task in snapshot.tasks for i in task.interrupts]
            if not pending:
                return dict(snapshot.values)
            live.stop()
            question = pending[0].value.get("question", "Continue?") if isinstance(pending[0].value, dict) else str(pending[0].value)
            payload = Command(resume={"approve": typer.confirm(question, default=False)})
            live.start()


async def _run(
    target: str, task: str | None, repo: Path, thread: str | None, resume: bool, config: Path | None,
    policy: str | None, offline: bool, checkpointer: str | None,
) -> None:
    from turnout import telemetry
    from turnout.graphs import build_hybrid_graph
    from turnout.graphs.hybrid import check_task
    from turnout.graphs._running import load_graph, new_thread_id, require_checkpoint
    from turnout.graphs.checkpointers import open_checkpointer, redacted, thread_lock

    settings = settings_from(config, policy=policy, offline=offline)
    if task is None and not resume:
        raise UserError("give a task, e.g. turnout run hybrid \"where is X computed?\"")
    if task is not None and target == "hybrid":
        check_task(task, settings)  # before the index is built or any model is called
    checkpoints = checkpointer or settings.checkpoints
    thread_id = thread or new_thread_id()
    async with thread_lock(checkpoints, thread_id), open_checkpointer(checkpoints) as saver:
        if target == "hybrid":
            if not repo.is_dir():
                raise UserError(f"--repo {repo} is not a directory; give the repository to work on")
            graph = build_hybrid_graph(repo=repo, checkpointer=saver)
        else:
            graph = load_graph(target, saver)
        telemetry.instrument(graph)
        if resume:
            await require_checkpoint(graph, thread_id, redacted(checkpoints))
            payload = None
        else:
            assert task is not None
            payload = {"task": task} if target == "hybrid" else {"task": task, "messages": [("user", task)]}
        try:
            context = {"target": target, "repo": str(repo.resolve())} if target == "hybrid" else {"target": target}
            with usage_meter() as meter, telemetry.run_context(**context):  # every call this command makes
                values = await _execute(graph, payload, thread_id)
        except (KeyboardInterrupt, asyncio.CancelledError):
            where = f" --checkpointer {redacted(checkpointer)}" if checkpointer else ""
            errors.print(
                f"[yellow]interrupted[/]: resume with `turnout run {target} --thread {thread_id} --resume{where}`"
            )
            raise typer.Exit(130) from None
    _summary(values, thread_id, settings.policy.mode, meter.totals)
    if target == "hybrid" and values.get("status") != "finished":  # 0 only for an answer that passed its check
        raise typer.Exit(1)


def run(
    target: Annotated[str, typer.Argument(help="'hybrid', or your own graph as package.module:attribute.")],
    task: Annotated[Optional[str], typer.Argument(help="What to do.")] = None,
    repo: Annotated[Path, typer.Option(help="Repository the agents work on.")] = Path("."),
    thread: Annotated[Optional[str], typer.Option(help="Thread id (checkpoints); default: a new one.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the thread from its last checkpoint.")] = False,
    checkpointer: CheckpointerOption = None,
    config: ConfigOption = None,
    policy: PolicyOption = None,
    offline: OfflineOption = False,
) -> None:
    """Run a graph with live progress, then print the answer, a one-screen summary, and what
    was sent off this machine."""
    try:
        if task is not None and not task.strip():
            raise UserError('the task is empty; say what to do, e.g. turnout run hybrid "where is X computed?"')
        asyncio.run(_run(target, task, repo, thread, resume, config, policy, offline, checkpointer))
    except TurnoutError as exc:
        raise fail(exc) from None
