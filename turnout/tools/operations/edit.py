"""edit: a change no codemod makes, written by the coder model as whole-definition
replacements. It has no deterministic executor. The tests show it broke nothing; whether it
did what was asked is proven only where the instruction asks for something a check can see
(a docstring on the symbol; type hints on it, held to mypy as `add_type_hints` is). Any other
instruction leaves the postcondition saying that nothing but the tests checked the edit, so a
model-written edit is never `succeeded` on the tests and a small model's review alone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from turnout.tools._codemod_targets import SourceTree, find
from turnout.tools.operations._base import DottedName, NotFound, Operation, read_tree
from turnout.tools.test_env import TestEnvironment

_DOCSTRING = re.compile(r"\bdocstrings?\b|\bdocument\b", re.IGNORECASE)
_TYPE_HINTS = re.compile(r"\btype[ -]?hints?\b|\bannotat|\btyped\b", re.IGNORECASE)


class Edit(Operation):
    op: Literal["edit"] = "edit"
    needs_model: ClassVar[bool] = True
    symbol: DottedName | None = Field(None, description="The function or class the change is about.")
    instruction: str = Field("", max_length=400, description="What to change; the request when empty.")

    def describe(self) -> str:
        return "model-written edit" + (f" of {self.symbol}" if self.symbol else "") + (
            f": {self.instruction}" if self.instruction else "")

    def names(self) -> set[str]:
        return {self.symbol, self.symbol.rsplit(".", 1)[-1]} if self.symbol else set()

    def checked(self, tree: SourceTree) -> Edit:
        if self.symbol and not find(tree, self.symbol, "auto", None):
            raise NotFound(f"no definition of {self.symbol!r} in this repository")
        return self

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        asked = [kind for kind, pattern in (("docstring", _DOCSTRING), ("type hints", _TYPE_HINTS))
                 if pattern.search(self.instruction)]
        if not asked or not self.symbol:
            return ["nothing but the tests checks that the model's edit does what was asked; review the patch "
                    "(or ask for it as an operation turnout proves)"]
        missing = []
        if "docstring" in asked:
            tree = read_tree(root)
            found = find(tree, self.symbol, "auto", None)
            if not found or not _has_docstring(tree.trees[found[0].path], found[0].qualname):
                missing.append(f"{self.symbol} has no docstring")
        if "type hints" in asked:
            from turnout.tools.operations.type_hints import AddTypeHints

            missing += AddTypeHints(targets=[self.symbol]).checked(read_tree(root)).postcondition(root, env)
        return missing


def _has_docstring(parsed: ast.Module, qualname: str) -> bool:
    body: list[ast.stmt] = parsed.body
    node: ast.AST | None = None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                     and n.name == part), None)
        if node is None:
            return False
        body = node.body
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and bool(ast.get_docstring(node))


def coder_task(request: str, operations: Sequence[Operation]) -> str:
    """What the coder is asked to write: the plan's edit instructions (a plan file's request is
    only its name), else the request itself."""
    said = [f"In {op.symbol}: {op.instruction}" if op.symbol else op.instruction
            for op in operations if isinstance(op, Edit) and op.instruction]
    return "\n".join(said) or request
