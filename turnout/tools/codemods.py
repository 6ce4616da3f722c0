"""Deterministic codemods for `turnout refactor`: rename, move, f-strings.

When a request fits one of these, the coder agent picks it (by name, from an enum built
with `available_codemods()`) instead of writing the edit itself: rope and ruff do the
work, exactly and in seconds, and the model only chooses the arguments.

    rename_symbol(root, "load_inventory", "read_inventory")
    rename_symbol(root, "Invoice.add_line", "append_line")
    rename_symbol(root, "stockroom.pricing", "prices", kind="module")
    move_function(root, "round_money", "src/stockroom/pricing.py", "stockroom.money")
    convert_to_fstrings(root)

They edit `root` in place: `turnout refactor` runs them in an isolated copy of the user's
repository. Each is all-or-nothing: if rope or ruff fails, or any changed Python file no
longer parses, every file is restored and `CodemodError` says why. Mentions of the old
name that were not rewritten (README prose, strings, untyped `obj.method` calls) come back
in `CodemodResult.remaining` for the agent or a human to judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeAlias

from pydantic import BaseModel

from turnout.errors import UserError
from turnout.telemetry._spans import traced_tool

CodemodName: TypeAlias = Literal[
    "rename_symbol", "move_function", "convert_to_fstrings", "extract_function", "inline", "change_signature",
    "add_type_hints",
]
RenameKind: TypeAlias = Literal["auto", "function", "class", "method", "module"]


class CodemodError(UserError):
    """A codemod cannot run as asked, or failed and restored every file; the message says which."""


class Mention(BaseModel):
    """A line that still mentions the old name after a codemod: file, 1-based line, its text."""

    path: str
    line: int
    text: str


class CodemodResult(BaseModel):
    """What a codemod did: the Python files it changed (root-relative, sorted), the mentions
    it left for review, and notes on what the tools did beyond the obvious."""

    operation: CodemodName
    changed_files: list[str]
    remaining: list[Mention] = []
    notes: list[str] = []


class CodemodSpec(BaseModel):
    """One codemod as a planner sees it: its name (an enum value), when it fits, and what each
    argument it takes besides `root` means (`required` ones first)."""

    name: CodemodName
    summary: str
    required: list[str]
    optional: list[str] = []
    arguments: dict[str, str] = {}


def available_codemods() -> list[CodemodSpec]:
    """The codemods an agent may choose from (`CodemodName` is the enum of their names)."""
    return [
        CodemodSpec(
            name="rename_symbol", required=["old", "new"], optional=["path", "kind"],
            summary="Rename a function, class, method or module everywhere: definition, imports, "
                    "__all__, doctests, .pyi stubs; other mentions are reported.",
            arguments={"old": "the symbol: 'load', 'Invoice.add_line' or a dotted module 'pkg.mod'",
                       "new": "the new name (an identifier; for a module its last part)",
                       "path": "the file that defines it, when several definitions share the name",
                       "kind": "auto, function, class, method or module"}),
        CodemodSpec(
            name="move_function", required=["name", "from_path", "to_module"],
            summary="Move a module-level function or class to another module (created if its package "
                    "exists); imports follow it and the old module re-exports it.",
            arguments={"name": "the function or class, unqualified",
                       "from_path": "the file that defines it, relative to the repository root",
                       "to_module": "the dotted module to move it into, e.g. 'pkg.money'"}),
        CodemodSpec(
            name="convert_to_fstrings", required=[], optional=["paths", "target_version"],
            summary="Rewrite '%' formatting and str.format() calls as f-strings (ruff UP030, UP031, UP032).",
            arguments={"paths": "files or directories to convert; every Python file when omitted",
                       "target_version": "the oldest Python the code supports, e.g. 'py311'"}),
    ]


@traced_tool("rename_symbol")
def rename_symbol(root: Path | str, old: str, new: str, *, path: str | None = None,
                  kind: RenameKind = "auto") -> CodemodResult:
    """Rename a function, class, method (`Class.method`) or module (dotted path) to `new`.

    rope renames the definition and every reference it can resolve, with docstrings,
    doctests, `__all__` entries and names in strings (`mock.patch("pkg.mod.old")`); prose
    strings it renamed are put back; a sweep renames what rope cannot see: `.pyi` stubs,
    `super().old()`, `param: Class` receivers. Other mentions are reported in `remaining`,
    not rewritten. `path` (a file under `root`) and `kind` choose among same-named symbols.
    """
    from turnout.tools._rename import rename

    return rename(root, old, new, path=path, kind=kind)


@traced_tool("move_function")
def move_function(root: Path | str, name: str, from_path: str, to_module: str) -> CodemodResult:
    """Move the module-level function (or class) `name` from the file `from_path` into the
    dotted module `to_module` (created when its package exists). Imports of it are repointed
    to the new module, and the old module re-exports it, so existing imports keep working."""
    from turnout.tools._move import move

    return move(root, name, from_path, to_module)


@traced_tool("convert_to_fstrings")
def convert_to_fstrings(root: Path | str, paths: list[str] | None = None, *,
                        target_version: str = "py311") -> CodemodResult:
    """Rewrite `"%s" % x` and `"{}".format(x)` as f-strings with ruff (UP030, UP031, UP032), in
    `paths` (files or directories under `root`) or in every Python file."""
    from turnout.tools._fstrings import convert

    return convert(root, paths, target_version=target_version)
