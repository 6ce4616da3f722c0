"""A plan against a tree: check it before any edit, apply its deterministic operations in
order, and check every postcondition afterwards.

    checked, problems = check_plan(plan, root)   # every operation resolved, or why not
    done = apply_plan(checked, root, env)        # files changed, mentions left, notes
    missing = plan_postconditions(checked, root, env)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from turnout.tools.codemods import CodemodError, Mention
from turnout.tools.operations import Plan
from turnout.tools.operations._base import NotFound, Operation, read_tree
from turnout.tools.test_env import TestEnvironment


@dataclass
class PlanProblems:
    """Why a plan cannot run: operations that name nothing here, and ones that are wrong."""

    not_found: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.not_found or self.invalid)

    def describe(self) -> str:
        return "; ".join([*self.not_found, *self.invalid])


@dataclass
class Applied:
    changed_files: list[str]
    remaining: list[Mention]
    notes: list[str]
    operations: list[Operation]  # as resolved against the tree each one ran on


def check_plan(plan: Plan, root: Path) -> tuple[Plan, PlanProblems]:
    """The plan with each operation resolved against `root` (which file, which module), and
    what stops it. An operation about a name an earlier one creates is resolved when it runs."""
    tree = read_tree(root)
    problems = PlanProblems()
    resolved: list[Operation] = []
    created: set[str] = set()
    for number, op in enumerate(plan.operations, 1):
        if op.names() & created:
            resolved.append(op)
        else:
            try:
                resolved.append(op.checked(tree))
            except NotFound as exc:
                problems.not_found.append(f"operation {number} ({op.describe()}): {exc}")
            except CodemodError as exc:
                problems.invalid.append(f"operation {number} ({op.describe()}): {exc}")
        created |= op.introduces()
    for rel in tree.unparsable:  # rope cannot read it: a change there would be left half done
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        if named := sorted(n for op in plan.operations for n in op.names() if n and re.search(rf"\b{re.escape(n)}\b", text)):
            problems.invalid.append(f"{rel} does not parse and mentions {named[0]!r}; turnout never edits a file it "
                                    "cannot parse (fix its syntax first)")
    return Plan(operations=resolved) if not problems else plan, problems


def apply_plan(plan: Plan, root: Path, env: TestEnvironment | None = None) -> Applied:
    """Run every deterministic operation in order (each re-checked against the tree it runs on);
    CodemodError from the first that fails (that operation restored its own files). `env` is
    the repository's test environment, for operations that consult its packages."""
    changed: set[str] = set()
    remaining: list[Mention] = []
    notes: list[str] = []
    done: list[Operation] = []
    for op in plan.operations:
        if op.needs_model:
            done.append(op)
            continue
        current = op.checked(read_tree(root))
        result = current.apply(root, env)
        changed.update(result.changed_files)
        remaining.extend(result.remaining)
        notes.extend(result.notes)
        done.append(current)
    return Applied(sorted(changed), remaining, notes, done)


def plan_postconditions(plan: Plan, root: Path, env: TestEnvironment | None) -> list[str]:
    """What the plan asked for that the tree does not show, one sentence each."""
    missing = []
    for number, op in enumerate(plan.operations, 1):
        missing += [f"operation {number} ({op.op}): {problem}" for problem in op.postcondition(root, env)]
    return missing
