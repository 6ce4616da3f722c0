"""extract: statements of one function (a line span) become a new function that the original
calls in their place (rope's extract method: the span's inputs become its parameters, what
it assigns and later code reads comes back as its result). Parameters named like the
original's take the original's annotations, so the helper is typed where the original was.

When the original is a pure module-level function, it is called before and after the change
on the same generated inputs (`differential`); a difference undoes the extraction.

Postcondition: the helper is defined in the file, and the original function calls it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools import _rope_ops
from turnout.tools._codemod_files import Snapshot
from turnout.tools._codemod_run import relative, transaction
from turnout.tools._codemod_targets import SourceTree, bound_names, module_level, parameters
from turnout.tools.codemods import CodemodError, CodemodResult, Mention
from turnout.tools.operations._base import Identifier, Operation, read_tree
from turnout.tools.operations.differential import compare_before_after
from turnout.tools.test_env import TestEnvironment

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class Extract(Operation):
    op: Literal["extract"] = "extract"
    path: str = Field(description="The file, relative to the repository root.")
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    new_name: Identifier = Field(description="The helper's name.")
    function: str | None = Field(None, description="The function the lines are in (found when omitted).")

    def describe(self) -> str:
        inside = f" of {self.function}" if self.function else ""
        return f"extract {self.path}:{self.start_line}-{self.end_line}{inside} → {self.new_name}()"

    def names(self) -> set[str]:
        return {self.new_name, self.path, *([self.function] if self.function else [])}

    def introduces(self) -> set[str]:
        return {self.new_name}

    def checked(self, tree: SourceTree) -> Extract:
        rel = relative(tree.root.resolve(), self.path, what="path")
        if rel not in tree.trees:
            raise CodemodError(f"{rel} is not a Python file that parses" + (
                " (it does not parse; turnout never edits a file it cannot read whole)" if rel in tree.unparsable else ""))
        if self.end_line < self.start_line:
            raise CodemodError(f"end_line {self.end_line} is before start_line {self.start_line}")
        enclosing = _enclosing(tree.trees[rel], self.start_line, self.end_line)
        if enclosing is None:
            raise CodemodError(f"lines {self.start_line}-{self.end_line} of {rel} are not whole statements inside "
                               "one function's body")
        qualname, _node = enclosing
        if self.new_name in bound_names(list(module_level(tree.trees[rel].body))):
            raise CodemodError(f"{self.new_name!r} is already defined in {rel}; choose another name")
        if self.function and self.function != qualname:
            raise CodemodError(f"lines {self.start_line}-{self.end_line} of {rel} are in {qualname}, not {self.function}")
        return self.model_copy(update={"path": rel, "function": qualname})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
            before = (root / self.path).read_text(encoding="utf-8")
            _rope_ops.extract(root, self.path, self.start_line, self.end_line, self.new_name)
            typed = _copy_annotations(root / self.path, self.function or "", self.new_name)
            notes = [f"extracted lines {self.start_line}-{self.end_line} of {self.function} into {self.new_name}()"]
            if typed:
                notes.append(f"annotated {self.new_name}'s parameters {', '.join(typed)} as in {self.function}")
            if self.function and "." not in self.function:
                compared = compare_before_after(root, env, self.path, read_tree(root).modules[self.path], [self.function], before)
                if compared.changed:
                    raise CodemodError(f"the extraction changed what {self.function} does: {compared.changed}; "
                                       "every file was restored")
                notes.append(compared.note)
            return [], notes

        return transaction(root, "extract_function", body)

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        tree = read_tree(root)
        parsed = tree.trees.get(self.path)
        if parsed is None:
            return [f"{self.path} does not parse after the extraction"]
        helpers = [n for n in ast.walk(parsed) if isinstance(n, FunctionNode) and n.name == self.new_name]
        if not helpers:
            return [f"no function {self.new_name} in {self.path}"]
        original = _find(parsed, self.function or "")
        if original is None:
            return [f"{self.function} is gone from {self.path}"]
        calls = [n for n in ast.walk(original) if isinstance(n, ast.Call) and self.new_name in (
            getattr(n.func, "id", None), getattr(n.func, "attr", None))]
        return [] if calls else [f"{self.function} does not call {self.new_name}"]


def _functions(parsed: ast.Module) -> list[tuple[str, FunctionNode]]:
    found: list[tuple[str, FunctionNode]] = []
    for stmt in module_level(parsed.body):
        if isinstance(stmt, FunctionNode):
            found.append((stmt.name, stmt))
        elif isinstance(stmt, ast.ClassDef):
            found += [(f"{stmt.name}.{item.name}", item) for item in stmt.body if isinstance(item, FunctionNode)]
    return found


def _find(parsed: ast.Module, qualname: str) -> FunctionNode | None:
    return next((node for name, node in _functions(parsed) if name == qualname), None)


def _enclosing(parsed: ast.Module, start: int, end: int) -> tuple[str, FunctionNode] | None:
    """The function whose body holds lines start..end as whole statements of one block."""
    for qualname, node in _functions(parsed):
        for block in _blocks(node):
            starts = [s.lineno for s in block]
            ends = [s.end_lineno or s.lineno for s in block]
            if start in starts and end in ends and starts.index(start) <= ends.index(end):
                return qualname, node
    return None


def _blocks(node: ast.AST) -> list[list[ast.stmt]]:
    blocks = []
    for field in ("body", "orelse", "finalbody"):
        block = getattr(node, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            blocks.append(block)
            for stmt in block:
                if not isinstance(stmt, FunctionNode | ast.ClassDef):
                    blocks += _blocks(stmt)
    for handler in getattr(node, "handlers", []):
        blocks += _blocks(handler)
    return blocks


def _copy_annotations(path: Path, original_name: str, helper_name: str) -> list[str]:
    """Give the helper's unannotated parameters the annotation of the original's parameter of
    the same name; returns the names annotated."""
    text = path.read_text(encoding="utf-8")
    parsed = ast.parse(text)
    original = _find(parsed, original_name)
    helper = next((n for n in ast.walk(parsed) if isinstance(n, FunctionNode) and n.name == helper_name), None)
    if original is None or helper is None:
        return []
    known = {a.arg: ast.get_source_segment(text, a.annotation) for a in parameters(original) if a.annotation}
    lines = text.splitlines(keepends=True)
    typed = []
    for arg in sorted(parameters(helper), key=lambda a: (a.lineno, a.col_offset), reverse=True):
        annotation = known.get(arg.arg)
        if arg.annotation is None and annotation and arg.end_col_offset is not None:
            line = lines[arg.lineno - 1].encode("utf-8")
            lines[arg.lineno - 1] = (line[:arg.end_col_offset] + f": {annotation}".encode()
                                     + line[arg.end_col_offset:]).decode("utf-8")
            typed.append(arg.arg)
    if typed:
        path.write_text("".join(lines), encoding="utf-8")
    return sorted(typed)

