"""change_signature: add parameters (each with a default, so existing calls keep working),
remove parameters, or reorder them, for a function or method and every call rope resolves.

Postcondition: the definition's parameters are exactly the planned list, and each added one
has its default.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout.tools import _rope_ops
from turnout.tools._codemod_files import Snapshot
from turnout.tools._codemod_run import transaction
from turnout.tools._codemod_targets import Definition, SourceTree, find
from turnout.tools.codemods import CodemodError, CodemodResult, Mention
from turnout.tools.operations._base import (
    DottedName,
    Identifier,
    Operation,
    read_tree,
    the_one,
)
from turnout.tools.test_env import TestEnvironment


class NewParameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Identifier
    default: str = Field(max_length=200, description="A Python expression, e.g. 'None' or '\"utf-8\"'.")
    index: int | None = Field(None, ge=0, description="Position among the parameters; last when omitted.")

    @field_validator("default")
    @classmethod
    def _is_expression(cls, value: str) -> str:
        try:
            ast.parse(value, mode="eval")
        except SyntaxError:
            raise ValueError(f"default {value!r} is not a Python expression") from None
        return value


class ChangeSignature(Operation):
    op: Literal["change_signature"] = "change_signature"
    function: DottedName = Field(description="'name' or 'Class.method'.")
    path: str | None = Field(None, description="The file that defines it (found when omitted).")
    add: list[NewParameter] = Field(default_factory=list, max_length=10)
    remove: list[Identifier] = Field(default_factory=list, max_length=10)
    order: list[Identifier] | None = Field(None, max_length=30, description="Every parameter, in the new order.")

    def describe(self) -> str:
        parts = [f"add {', '.join(p.name + '=' + p.default for p in self.add)}" if self.add else "",
                 f"remove {', '.join(self.remove)}" if self.remove else "",
                 f"order ({', '.join(self.order)})" if self.order else ""]
        return f"change the signature of {self.function}: " + "; ".join(p for p in parts if p)

    def names(self) -> set[str]:
        return {self.function, self.function.rsplit(".", 1)[-1], *(p.name for p in self.add), *self.remove,
                *(self.order or ())}

    def _definition(self, tree: SourceTree) -> Definition:
        found = [d for d in find(tree, self.function, "auto", self.path) if d.kind in ("function", "method")]
        return the_one(found, Definition.describe, choose="give path",
                       missing=f"no function or method {self.function!r} in this repository")

    def planned(self, current: list[str]) -> list[str]:
        """The parameter names after this change, from the names before it."""
        names = [n for n in current if n not in self.remove]
        for parameter in self.add:
            names.insert(len(names) if parameter.index is None else parameter.index, parameter.name)
        return self._ordered(names) if self.order else names

    def _ordered(self, names: list[str]) -> list[str]:
        """`order`, after the receiver (`self`/`cls`) when the order leaves it out."""
        assert self.order is not None
        return [n for n in names[:1] if n in ("self", "cls") and n not in self.order] + list(self.order)

    def checked(self, tree: SourceTree) -> ChangeSignature:
        if not (self.add or self.remove or self.order):
            raise CodemodError(f"the signature change of {self.function!r} adds, removes and reorders nothing")
        definition = self._definition(tree)
        current = _parameters(_node(tree.trees[definition.path], definition))
        if missing := [n for n in self.remove if n not in current]:
            raise CodemodError(f"{self.function} has no parameter {', '.join(missing)} (it has {', '.join(current)})")
        if taken := [p.name for p in self.add if p.name in current and p.name not in self.remove]:
            raise CodemodError(f"{self.function} already has a parameter {', '.join(taken)}")
        interim = [n for n in current if n not in self.remove] + [p.name for p in self.add]
        if self.order and sorted(self.planned(current)) != sorted(interim):
            raise CodemodError(f"order must list every parameter once: {', '.join(interim)}")
        return self.model_copy(update={"path": definition.path})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        tree = read_tree(root)
        definition = self._definition(tree)
        names = _parameters(_node(tree.trees[definition.path], definition))
        changes: list[tuple[str, object]] = []
        for name in self.remove:
            changes.append(("remove", names.index(name)))
            names.remove(name)
        for parameter in self.add:
            index = len(names) if parameter.index is None else parameter.index
            changes.append(("add", (index, parameter.name, parameter.default)))
            names.insert(index, parameter.name)
        if self.order:
            changes.append(("reorder", [names.index(n) for n in self._ordered(names)]))

        def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
            _rope_ops.change_signature(root, definition.path, (definition.line, definition.column or 0, definition.name),
                                       changes, parseable=set(tree.trees))
            return [], [self.describe()]

        return transaction(root, "change_signature", body)

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        tree = read_tree(root)
        try:
            definition = self._definition(tree)
        except CodemodError as exc:
            return [str(exc)]
        node = _node(tree.trees[definition.path], definition)
        have = _parameters(node)
        missing = [f"{self.function} still has the parameter {name}" for name in self.remove if name in have]
        missing += [f"{self.function} has no parameter {p.name}" for p in self.add if p.name not in have]
        if self.order and self._ordered(have) != have:
            missing.append(f"{self.function}'s parameters are ({', '.join(have)}), not ({', '.join(self.order)})")
        defaults = _defaults(tree.texts[definition.path], node)
        missing += [f"{p.name} has no default {p.default}" for p in self.add
                    if p.name in have and _same_expression(defaults.get(p.name)) != _same_expression(p.default)]
        return missing


def _node(parsed: ast.Module, definition: Definition) -> ast.FunctionDef | ast.AsyncFunctionDef:
    for node in ast.walk(parsed):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno == definition.line:
            return node
    raise CodemodError(f"cannot find {definition.describe()}")


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = node.args
    return [arg.arg for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


def _defaults(text: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str | None]:
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    found: dict[str, str | None] = {}
    for arg, default in zip(positional[len(positional) - len(a.defaults):], a.defaults, strict=True):
        found[arg.arg] = ast.get_source_segment(text, default)
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        found[arg.arg] = ast.get_source_segment(text, kw_default) if kw_default is not None else None
    return found


def _same_expression(source: str | None) -> str | None:
    return ast.dump(ast.parse(source, mode="eval")) if source else None
