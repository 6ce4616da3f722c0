"""convert_formatting: every `%` and `.format()` call that ruff's pyupgrade rules (UP030,
UP031, UP032) can rewrite becomes an f-string, in the files named or in every Python file
(`setup.py`, scripts and tests included).

Postcondition: no `"…" % x` and no `"…".format(…)` on a string literal is left in those
files, whether ruff could rewrite it or not (`"{a}".format(**d)` and `"%5.2f%%" % x` are
listed as left): "all" means all.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools._codemod_targets import SourceTree
from turnout.tools.codemods import CodemodResult, convert_to_fstrings
from turnout.tools.operations._base import Operation, read_tree
from turnout.tools.test_env import TestEnvironment


class ConvertFormatting(Operation):
    op: Literal["convert_formatting"] = "convert_formatting"
    paths: list[str] | None = Field(None, max_length=200, description="Files or folders; every Python file when omitted.")
    target_version: str = Field("py311", pattern=r"^py3\d{1,2}$", description="The oldest Python the code supports.")

    def describe(self) -> str:
        return "convert string formatting to f-strings in " + (", ".join(self.paths) if self.paths else "every file")

    def names(self) -> set[str]:
        return set(self.paths or ())

    def checked(self, tree: SourceTree) -> ConvertFormatting:
        from turnout.tools._codemod_run import relative

        for path in self.paths or ():
            relative(tree.root.resolve(), path, what="path")  # CodemodError when it is not under the repository
        return self

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        return convert_to_fstrings(root, self.paths, target_version=self.target_version)

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        from turnout.tools._fstrings import selected_files

        tree = read_tree(root)
        left = [f"{rel}:{line}" for rel in selected_files(root, self.paths) if rel in tree.trees
                for line in formatting_lines(tree.trees[rel])]
        return [f"{len(left)} string-formatting call(s) left: " + ", ".join(left[:8])
                + (" …" if len(left) > 8 else "")] if left else []


def formatting_lines(parsed: ast.Module) -> list[int]:
    """Lines with `"…" % x` or `"…".format(…)` on a str literal (bytes have no f-strings)."""
    lines = set()
    for node in ast.walk(parsed):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, str) or isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
            lines.add(node.lineno)
    return sorted(lines)
