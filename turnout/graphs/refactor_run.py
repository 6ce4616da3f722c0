"""A refactoring run from start to end, as `turnout refactor` runs it and any Python caller can.

    values = await run_refactor(Path("my_repo"), "Rename load_inventory to read_inventory", apply=True)
    values["status"], values["patch"], values["applied"], values["sent"]

What it adds to the graph itself (`build_refactor_graph`): the privacy default
(`refactor_settings`: `no-code` unless config chose a policy, which the graph applies too),
the checks before anything runs (`--apply` needs a tree with no uncommitted changes; a
given interpreter must exist), progress as the graph moves, the verified patch applied to
the repository only when asked and only if the tree has not changed, the workspace removed
once the run has ended (an interrupted run keeps it, to resume from its checkpoint), and the totals of what was sent off this machine.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from turnout.config import Settings, get_settings
from turnout.engines import usage_meter
from turnout.errors import UserError

Progress = Callable[[str | None, dict[str, Any]], None]


def refactor_settings(settings: Settings | None = None) -> Settings:
    """The settings a refactoring runs under: policy `no-code` unless config chose one. A
    refactoring reads the whole repository, so by default no source text leaves the machine."""
    settings = settings or get_settings()
    return settings if settings.policy_configured else settings.with_policy("no-code")


def work_folder(repo: Path) -> Path:
    """Where workspaces, patches and each run's evidence go: `.turnout/` here, unless here is
    inside the repository being refactored; then the user's cache folder, so a run never
    writes into the tree it refactors."""
    here = Path.cwd().resolve()
    if not here.is_relative_to(repo.resolve()):
        return Path(".turnout")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "turnout" / "refactor"


def check_request(repo: Path, *, apply: bool = False, python: str | None = None, test_command: str | None = None) -> None:
    """What must hold before a run starts, each a UserError that says what to do."""
    from turnout.tools.workspace import uncommitted_changes

    if not repo.is_dir():
        raise UserError(f"{repo} is not a directory; give the repository to refactor")
    if test_command is not None and not test_command.strip():
        raise UserError("--test-cmd is empty; give the command that runs the tests, or leave it out to detect one")
    if python and not Path(python).expanduser().exists():
        raise UserError(f"the interpreter {python!r} does not exist; pass --python with the Python that "
                        "runs this repository's tests (its virtual environment's bin/python)")
    if apply and (dirty := uncommitted_changes(repo)):
        shown = ", ".join(map(_one_line, dirty[:5])) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise UserError(f"{repo} has uncommitted changes ({shown}); commit or stash them, or run without --apply")


async def run_refactor(
    repo: Path,
    request: str,
    *,
    plan: Any = None,
    plan_source: str | None = None,
    apply: bool = False,
    settings: Settings | None = None,
    checkpoints: str | None = None,
    work_dir: Path | None = None,
    on_progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run a refactoring on `repo` and return the graph's final state, plus `applied` (the
    files written back, when `apply` and the run succeeded) and `sent` (what left the
    machine). `options` are the graph's inputs (`max_attempts`, `allow_failing_baseline`,
    `test_command`, `python`, `sandbox`, `pass_env`); `on_progress(node, values)` is called
    as each node finishes (`node` None: the state changed)."""
    from turnout import telemetry
    from turnout.graphs._running import new_thread_id, thread_config
    from turnout.graphs.checkpointers import open_checkpointer
    from turnout.graphs.refactor import build_refactor_graph
    from turnout.tools.workspace import Workspace

    settings = refactor_settings(settings)
    check_request(repo, apply=apply, python=options.get("python"), test_command=options.get("test_command"))
    run_id = new_thread_id()
    payload = {"request": request, "repo": str(repo.resolve()), "run_id": run_id,
               **{k: v for k, v in options.items() if v is not None}}
    if plan is not None:
        payload.update(plan=plan, plan_source=plan_source)
    values: dict[str, Any] = {}
    async with open_checkpointer(checkpoints or settings.checkpoints) as saver:
        graph = telemetry.instrument(build_refactor_graph(
            settings=settings, checkpointer=saver, work_dir=work_dir or work_folder(repo)))
        with usage_meter() as meter, telemetry.run_context(target="refactor"):
            async for mode, chunk in graph.astream(payload, thread_config(run_id), stream_mode=["updates", "values"]):
                if mode == "values":
                    values = chunk
                if on_progress is not None:
                    on_progress(next(iter(chunk), None) if mode == "updates" else None, values)
    values = dict(values)
    workspace = values.get("workspace")  # an interrupted run keeps it: its checkpoint resumes there
    try:
        if apply and values.get("status") == "succeeded" and workspace:
            values["applied"] = await asyncio.to_thread(Workspace.open(Path(workspace), repo=repo.resolve()).apply_to_repo)
    finally:
        if workspace:
            await asyncio.to_thread(Workspace.open(Path(workspace)).remove)
    values["sent"] = meter.totals
    values["policy"] = settings.policy.mode
    return values


def _one_line(path: str) -> str:
    """A path as one line of text: control characters (a newline in a file name) escaped."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
