"""Refactoring plans as data: a list of typed operations, each defined in one module with its
schema, its executor and its postcondition.

    plan = Plan(operations=[Rename(old="load", new="read", keep_alias="deprecated"),
                            Move(symbols=["Money"], to_module="shop.money")])
    plan = load_plan("plan.toml")                          # a plan file
    plan = plan_from_words(["rename", "load", "read"], keep_alias="plain")   # the command line

A plan file is TOML or JSON with one list, `operations`, whose items name their kind with
`op` (`rename`, `move`, `convert_formatting`, `extract`, `inline`, `change_signature`,
`add_type_hints`, `edit`); an unknown kind or field is an error that names it. Adding an operation is one
module here and one line in `OPERATIONS`.

From a refactoring request to a codemod (`turnout refactor`, `run_refactor`, the `refactor`
graph in `graphs/refactor.py`, node by node, after `prepare` has made the workspace copy and
run the baseline tests):

1. `plan` node. Words → plan: `phrasing.read_request` reads the operations the words ask
   for ("Rename function load to read"); when it reads none, or reads them with problems,
   the planner model answers instead. A plan file or the command line gives a `Plan`
   directly. Then `running.check_plan` checks the plan against the workspace copy (every
   name resolved).
2. `edit` node. Plan → change: `running.apply_plan` checks each operation again and calls its
   `apply` (its module here: `rename.py`, `move.py`, …), which does it with a deterministic
   tool: rope for rename, move, extract, inline and change_signature (rename and move
   through `turnout.tools.codemods`: `Rename.apply` → `codemods.rename_symbol` →
   `_rename.rename` → `_rope_ops.rename`; move's import fix-ups are libcst; the others
   through `_rope_ops`), ruff for convert_formatting (`_fstrings`), mypy's suggestions
   written with libcst for add_type_hints; only the `edit` operation is written by the coder
   model.
3. `verify` node. The tests run, then `running.plan_postconditions` checks each operation's
   postcondition, then the verifier model reviews the diff (it can only lower the verdict).
   A failed attempt goes back to `edit`; a retry after a codemod has the coder model write
   the whole change (the remote tier last).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turnout.errors import UserError
from turnout.tools.operations._base import Operation
from turnout.tools.operations.edit import Edit
from turnout.tools.operations.extract import Extract
from turnout.tools.operations.formatting import ConvertFormatting
from turnout.tools.operations.inline import Inline
from turnout.tools.operations.move import Move
from turnout.tools.operations.rename import Rename
from turnout.tools.operations.signature import ChangeSignature, NewParameter
from turnout.tools.operations.type_hints import AddTypeHints

OPERATIONS: tuple[type[Operation], ...] = (Rename, Move, ConvertFormatting, Extract, Inline, ChangeSignature, AddTypeHints, Edit)
AnyOperation = Annotated[
    Rename | Move | ConvertFormatting | Extract | Inline | ChangeSignature | AddTypeHints | Edit, Field(discriminator="op")
]
OPERATION_NAMES: tuple[str, ...] = tuple(o.model_fields["op"].default for o in OPERATIONS)


class PlanError(UserError):
    """A plan file or a command-line plan that cannot be read; the message says what and where."""


class Plan(BaseModel):
    """What a refactoring run does, in order."""

    model_config = ConfigDict(extra="forbid")
    operations: list[AnyOperation] = Field(min_length=1, max_length=20)

    @property
    def needs_model(self) -> bool:
        return any(op.needs_model for op in self.operations)

    def describe(self) -> list[str]:
        return [op.describe() for op in self.operations]


def _where(loc: tuple[int | str, ...]) -> str:
    """("operations", 0, "rename", "colour") -> "operation 1 (rename), field colour"."""
    if len(loc) < 2 or loc[0] != "operations" or not isinstance(loc[1], int):
        return ".".join(map(str, loc)) or "the plan"
    where = f"operation {loc[1] + 1}" + (f" ({loc[2]})" if len(loc) > 2 else "")
    return where + (f", field {'.'.join(map(str, loc[3:]))}" if len(loc) > 3 else "")


def _explain(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors()[:6]:
        where = _where(item["loc"])
        given = item["input"].get("op") if isinstance(item["input"], dict) else item["input"]
        if item["type"] == "union_tag_invalid":
            lines.append(f"{where}: unknown operation {given!r} (known: {', '.join(OPERATION_NAMES)})")
        elif item["type"] == "union_tag_not_found":
            lines.append(f"{where}: an operation needs `op` (one of {', '.join(OPERATION_NAMES)})")
        elif item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field")
        else:
            lines.append(f"{where}: {item['msg']}")
    return f"{source} is not a valid plan: " + "; ".join(lines)


def parse_plan(data: Any, source: str = "the given plan") -> Plan:
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_explain(exc, source)) from None


def load_plan(path: Path | str) -> Plan:
    """A plan from a `.toml` or `.json` file: `[[operations]]` tables, or {"operations": [...]}."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PlanError(f"plan file {str(file)!r} does not exist")
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(f"plan file {file} does not parse as {'JSON' if file.suffix == '.json' else 'TOML'}: {exc}") from None
    return parse_plan(data, f"plan file {file}")


COMMAND_LINE_FORMS = {  # the operations `turnout refactor REPO OP ARGS…` takes, and their arguments
    "rename": "rename OLD NEW",
    "move": "move NAME [NAME ...] MODULE",
    "convert_formatting": "convert_formatting [PATH ...]",
    "extract": "extract PATH START_LINE END_LINE NEW_NAME",
    "inline": "inline NAME",
    "add_type_hints": "add_type_hints TARGET [TARGET ...]",
}


def plan_from_words(words: list[str], *, keep_alias: str = "none") -> Plan:
    """The command-line form: `rename OLD NEW`, `move NAME… MODULE`, `convert_formatting [PATH…]`,
    `extract PATH START END NEW_NAME`, `inline NAME`, `add_type_hints TARGET…` (`convert-formatting`
    also goes)."""
    if not words:
        raise PlanError("no operation given; " + "; ".join(COMMAND_LINE_FORMS.values()))
    kind, args = words[0].replace("-", "_"), words[1:]
    shapes: dict[str, tuple[bool, dict[str, Any]]] = {
        "rename": (len(args) == 2, {"old": args[0], "new": args[-1], "keep_alias": keep_alias} if args else {}),
        "move": (len(args) >= 2, {"symbols": args[:-1], "to_module": args[-1]} if args else {}),
        "convert_formatting": (True, {"paths": args or None}),
        "extract": (len(args) == 4, dict(zip(("path", "start_line", "end_line", "new_name"), args, strict=False))),
        "inline": (len(args) == 1, {"name": args[0]} if args else {}),
        "add_type_hints": (len(args) >= 1, {"targets": args}),
    }
    if kind not in shapes:
        raise PlanError(f"unknown operation {words[0]!r} on the command line; use one of: " + "; ".join(COMMAND_LINE_FORMS.values())
                        + " (or --plan FILE for the others)")
    fits, fields = shapes[kind]
    if not fits:
        raise PlanError(f"{words[0]} takes: {COMMAND_LINE_FORMS[kind]}")
    if keep_alias != "none" and kind != "rename":
        raise PlanError("--keep-alias goes with rename only")
    return parse_plan({"operations": [{"op": kind, **fields}]}, "the command line")


__all__ = [
    "COMMAND_LINE_FORMS", "OPERATIONS", "AddTypeHints", "AnyOperation", "ChangeSignature", "ConvertFormatting", "Edit", "Extract", "Inline", "Move",
    "NewParameter", "Operation", "Plan", "PlanError", "Rename", "load_plan", "parse_plan", "plan_from_words",
]
