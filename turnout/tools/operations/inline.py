"""inline: a module-level function or variable is replaced by its body (or value) at every
use rope resolves, and its definition removed.

The module-level functions of the same file that used it are called before and after the
change on the same generated inputs where they are pure (`differential`); a difference
undoes the inlining.

Postcondition: no code defines or uses the name any more.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools import _rope_ops
from turnout.tools._codemod_files import Snapshot, char_column
from turnout.tools._codemod_run import transaction
from turnout.tools._codemod_targets import SourceTree, module_level
from turnout.tools.codemods import CodemodError, CodemodResult, Mention
from turnout.tools.operations._base import (
    Identifier,
    Operation,
    code_uses,
    read_tree,
    the_one,
)
from turnout.tools.operations.differential import compare_before_after
from turnout.tools.test_env import TestEnvironment


class Inline(Operation):
    op: Literal["inline"] = "inline"
    name: Identifier = Field(description="A module-level function or variable.")
    path: str | None = Field(None, description="The file that defines it (found when omitted).")

    def describe(self) -> str:
        return f"inline {self.name}" + (f" ({self.path})" if self.path else "")

    def names(self) -> set[str]:
        return {self.name}

    def _position(self, tree: SourceTree) -> tuple[str, tuple[int, int, str]]:
        hits = []
        for rel, parsed in sorted(tree.trees.items()):
            if self.path not in (None, rel):
                continue
            for stmt in module_level(parsed.body):
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == self.name:
                    line = tree.texts[rel].splitlines()[stmt.lineno - 1]
                    hits.append((rel, (stmt.lineno, line.index(self.name, char_column(line, stmt.col_offset)), self.name)))
                elif isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == self.name for t in stmt.targets):
                    target = next(t for t in stmt.targets if isinstance(t, ast.Name) and t.id == self.name)
                    line = tree.texts[rel].splitlines()[target.lineno - 1]
                    hits.append((rel, (target.lineno, char_column(line, target.col_offset), self.name)))
        return the_one(hits, lambda hit: hit[0], choose="give path to choose one",
                       missing=f"no module-level function or variable {self.name!r}"
                               + (f" in {self.path}" if self.path else " in this repository"))

    def checked(self, tree: SourceTree) -> Inline:
        rel, _position = self._position(tree)
        return self.model_copy(update={"path": rel})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        tree = read_tree(root)
        rel, position = self._position(tree)

        before = tree.texts[rel]
        callers = [s.name for s in module_level(tree.trees[rel].body) if isinstance(s, ast.FunctionDef) and s.name != self.name
                   and any(isinstance(n, ast.Name) and n.id == self.name for n in ast.walk(s))]

        def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
            _rope_ops.inline(root, rel, position, parseable=set(tree.trees))
            notes = [f"inlined {self.name} from {rel} into its uses and removed it"]
            if callers:
                compared = compare_before_after(root, env, rel, tree.modules[rel], callers, before, also_old=(self.name,))
                if compared.changed:
                    raise CodemodError(f"inlining {self.name} changed what its callers do: {compared.changed}; "
                                       "every file was restored")
                notes.append(compared.note)
            else:
                notes.append(f"not compared: no module-level function of {rel} calls {self.name}")
            return [], notes

        return transaction(root, "inline", body)

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        left = code_uses(read_tree(root), self.name)
        return [f"{self.name} is still defined or used at {', '.join(left[:8])}"] if left else []
