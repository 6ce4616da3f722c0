"""`turnout refactor`: a verified patch for a refactoring request, the repository untouched."""

from __future__ import annotations

import asyncio
import enum
import re
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
from turnout.errors import TurnoutError, UserError

PHASES = {"prepare": "copying and running the tests", "plan": "planning", "edit": "editing",
          "verify": "verifying", "finish": "writing the patch", "give_up": "giving up"}


def _next_phase(finished: str) -> str:
    """The phase that runs after node `finished` (what the live line should say now)."""
    return {"prepare": "plan", "plan": "edit", "edit": "verify", "verify": "edit"}.get(finished, finished)


def _line(phase: str, values: dict[str, Any]) -> Text:
    attempts = values.get("attempts") or []
    touched = sorted({f for a in attempts for f in a.changed_files})
    tests = attempts[-1].tests.summary() if attempts and attempts[-1].tests else (
        values["baseline"].summary() + " (baseline)" if values.get("baseline") else "not run yet")
    return Text.assemble(("▶ ", "cyan"), (PHASES.get(phase, phase), "bold"),
                         f"  attempt {len(attempts)}  files {len(touched)}  tests: {tests}")


def _report(values: dict[str, Any], policy: str) -> None:
    status = values.get("status", "?")
    color = {"succeeded": "green", "nothing_to_change": "yellow", "partial": "yellow"}.get(status, "red")
    table = Table(show_header=False, box=None)

    def row(label: str, value: str) -> None:  # values are data: "[refactor]" in one is no markup
        table.add_row(label, Text(value))

    plan = values.get("plan")
    if plan is not None:
        steps = plan.describe()
        row(f"plan ({values.get('plan_source', '?')})", "\n".join(
            f"{n}. {step}" for n, step in enumerate(steps, 1)) if len(steps) > 1 else steps[0])
    for clause in values.get("uncovered") or []:
        row("not done", clause)
    if values.get("changed_files"):
        row("files changed", ", ".join(values["changed_files"]))
    if values.get("test_env") is not None:
        row("tests run with", values["test_env"].describe())
        row("sandbox", values["test_env"].runner().describe())
    if values.get("baseline"):
        row("tests before", values["baseline"].summary())
    attempts = values.get("attempts") or []
    if attempts and attempts[-1].tests:
        row("tests after", attempts[-1].tests.summary())
    for a in attempts:
        row(f"attempt {a.number}", f"{a.method} ({a.tier}): " + (a.problem or "accepted"))
    if attempts and attempts[-1].missing:
        row("not proven", "\n".join(attempts[-1].missing[:8]))
    if attempts and attempts[-1].remaining:
        left = attempts[-1].remaining
        row("left for you", "\n".join(left[:8]) + (f"\n… and {len(left) - 8} more" if len(left) > 8 else ""))
    usage = values.get("usage")
    if usage is not None:
        row("tokens", f"local {usage.local_tokens} / remote {usage.remote_tokens}")
    if values.get("review") is not None:
        review = values["review"]
        said = "; ".join(review.reasons) or "nothing"
        verdict = ("passed" if review.passed else "doubts") if values.get("review_usable") else "no usable review"
        row("review", f"{verdict}: {said}" if values.get("review_usable") else
                      f"{verdict} (its reasons name nothing in the diff: {said})")
    elif values.get("review_problem"):
        row("review", f"none: the verifier's answer was not usable ({values['review_problem']})")
    if values.get("patch"):
        row("patch", values["patch"])
    if attempts and values.get("run_folder"):
        row("attempts kept in", f"{values['run_folder']} (attempt-N.diff, attempt-N.txt)")
    console.print(table)
    reason = f": {values['reason']}" if values.get("reason") else ""
    errors.print(f"[{color}]{status}[/]{reason}")
    errors.print(egress_line(values.get("sent"), policy), soft_wrap=True)


async def _refactor(repo: Path, request: str, plan: Any, plan_source: str | None, apply: bool, settings: Any,
                    checkpoints: str, **options: Any) -> dict[str, Any]:
    """The library's run (`turnout.graphs.refactor_run`) with a live line of its progress."""
    from turnout.graphs.refactor_run import run_refactor

    phase, values = "prepare", {}
    with Live(_line(phase, values), console=errors, transient=True, refresh_per_second=8) as live:
        def progress(node: str | None, now: dict[str, Any]) -> None:
            nonlocal phase
            phase = _next_phase(node) if node else phase
            live.update(_line(phase, now))

        return await run_refactor(repo, request, plan=plan, plan_source=plan_source, apply=apply, settings=settings,
                                  checkpoints=checkpoints, on_progress=progress, **options)


def _request_and_plan(words: list[str], plan_file: Path | None, keep_alias: str | None) -> tuple[str, Any, str | None]:
    """(the request as text, a plan or None, where the plan came from) from the command line."""
    from turnout.tools.operations import COMMAND_LINE_FORMS, load_plan, plan_from_words

    if plan_file is not None:
        if words:
            raise UserError("give either a request or --plan FILE, not both")
        if keep_alias:
            raise UserError("--keep-alias goes with the command-line form (rename OLD NEW --keep-alias …); "
                            "in a plan file, write keep_alias in the rename")
        return f"the plan in {plan_file}", load_plan(plan_file), "plan file"
    if not " ".join(words).strip():
        raise UserError('give a request ("Rename load_inventory to read_inventory"), an operation '
                        "(rename OLD NEW) or --plan FILE")
    if len(words) > 1 and words[0].replace("-", "_") in COMMAND_LINE_FORMS:
        return " ".join(words), plan_from_words(words, keep_alias=keep_alias or "none"), "command line"
    if keep_alias:
        raise UserError("--keep-alias goes with the command-line form (rename OLD NEW --keep-alias deprecated); "
                        'in a sentence, write "keeping the old name as a deprecated alias"')
    return " ".join(words), None, None


class SandboxChoice(str, enum.Enum):
    auto = "auto"
    bubblewrap = "bubblewrap"
    off = "off"


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _sandbox_first(repo: Path, mode: str, pass_env: list[str]) -> dict[str, Any]:
    """Check the sandbox before anything runs, and say on the first line when there is none."""
    from turnout.tools.sandbox import Sandbox

    if bad := [name for name in pass_env if not _ENV_NAME.fullmatch(name)]:
        raise UserError(f"--pass-env takes an environment variable's name, not {bad[0]!r}")
    sandbox = Sandbox.resolve(mode, hide=[repo], pass_env=pass_env)  # type: ignore[arg-type]
    if sandbox.kind == "none":
        errors.print(f"[yellow]warning:[/] {sandbox.describe()}", soft_wrap=True)
    return {"sandbox": mode, "pass_env": pass_env}


class KeepAlias(str, enum.Enum):
    none = "none"
    plain = "plain"
    deprecated = "deprecated"


def refactor(
    repo: Annotated[Path, typer.Argument(help="The repository to refactor.")],
    request: Annotated[Optional[list[str]], typer.Argument(
        help='What to change, in words ("Rename load_inventory to read_inventory") or as an operation: '
             "rename OLD NEW | move NAME… MODULE | convert-formatting [PATH…] | extract PATH START END NEW_NAME | "
             "inline NAME.", show_default=False)] = None,
    plan: Annotated[Optional[Path], typer.Option("--plan", help="A plan file (TOML or JSON) of operations to run instead of a request.")] = None,
    keep_alias: Annotated[Optional[KeepAlias], typer.Option(help="With `rename OLD NEW`: keep the old name as a plain or deprecated alias.")] = None,
    test_cmd: Annotated[Optional[str], typer.Option(help="Test command (default: detected pytest, tox or make test).")] = None,
    apply: Annotated[bool, typer.Option(help="Apply the verified patch to REPO (only if REPO is unchanged).")] = False,
    max_attempts: Annotated[int, typer.Option(min=1, help="Local attempts before escalating or giving up.")] = 3,
    allow_failing_baseline: Annotated[bool, typer.Option(help="Continue when tests already fail; only new failures count.")] = False,
    python: Annotated[Optional[str], typer.Option(help="Interpreter for the repository's tests (default: its .venv, venv or env, the active VIRTUAL_ENV, else turnout's own).")] = None,
    sandbox: Annotated[Optional[SandboxChoice], typer.Option(help="What the repository's tests run under: bubblewrap (required), auto (bubblewrap where it runs, else a warning) or off. Default: [refactor] sandbox, auto.")] = None,
    pass_env: Annotated[Optional[list[str]], typer.Option("--pass-env", metavar="NAME", help="An environment variable the repository's tests may see (repeatable); none of your credentials reach them otherwise.")] = None,
    checkpointer: CheckpointerOption = None,
    config: ConfigOption = None,
    policy: PolicyOption = None,
    offline: OfflineOption = False,
) -> None:
    """Plan, edit and verify in an isolated copy; print the report, where the patch is, and
    what was sent off this machine (policy no-code unless config or --policy says otherwise)."""
    from turnout.graphs.refactor_run import check_request, refactor_settings

    try:
        settings = refactor_settings(settings_from(config, policy=policy, offline=offline))
        interpreter = python or settings.refactor.python
        check_request(repo, apply=apply, python=interpreter, test_command=test_cmd)
        text, given_plan, plan_source = _request_and_plan(list(request or []), plan,
                                                          keep_alias.value if keep_alias else None)
        chosen = _sandbox_first(repo, sandbox.value if sandbox else settings.refactor.sandbox,
                                [*settings.refactor.pass_env, *(pass_env or [])])
        values = asyncio.run(_refactor(
            repo, text, given_plan, plan_source, apply, settings, checkpointer or settings.checkpoints,
            test_command=test_cmd, max_attempts=max_attempts, allow_failing_baseline=allow_failing_baseline,
            python=interpreter, **chosen,
        ))
    except TurnoutError as exc:
        raise fail(exc) from None
    _report(values, values["policy"])
    if values.get("applied"):
        console.print(f"applied to {repo}: {', '.join(values['applied'])}")
    status = values.get("status")
    if status in ("no_test_command", "baseline_failing", "no_test_environment"):
        raise typer.Exit(2)
    if status not in ("succeeded", "nothing_to_change"):
        raise typer.Exit(1)
