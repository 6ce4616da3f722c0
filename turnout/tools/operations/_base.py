"""What every refactoring operation is: a typed record with a pre-flight check, an executor
and a postcondition, and the two probes postconditions share.

    op = op.checked(tree)               # before its edit: names what exists? (CodemodError if not)
    result = op.apply(root, env)        # the deterministic edit (a CodemodResult)
    missing = op.postcondition(root, env)  # after the tests pass: what the request asked, proven

A postcondition returns what is missing, as sentences a person reads (empty: it holds).
Probes that import code run in the repository's own interpreter with the workspace first
on the path (`TestEnvironment`), never in turnout's.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from turnout.tools._codemod_files import python_files
from turnout.tools._codemod_targets import SourceTree
from turnout.tools.codemods import CodemodError, CodemodResult
from turnout.tools.test_env import TestEnvironment

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,79}$"


def _identifier(value: str) -> str:
    if not re.fullmatch(IDENTIFIER, value) or keyword.iskeyword(value):
        raise ValueError(f"{value!r} is not a Python identifier")
    return value


def _dotted(value: str) -> str:
    if len(value) > 200 or not all(re.fullmatch(IDENTIFIER, p) and not keyword.iskeyword(p) for p in value.split(".")):
        raise ValueError(f"{value!r} is not a name or dotted module path (like 'pkg.module' or 'Class.method')")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
DottedName = Annotated[str, AfterValidator(_dotted)]
PROBE_TIMEOUT_S = 120
T = TypeVar("T")


class NotFound(CodemodError):
    """The operation names something the repository does not have."""


class Operation(BaseModel, ABC):
    """One step of a plan. Subclasses set `op` (a Literal: the plan file's `op = "…"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    needs_model: ClassVar[bool] = False  # True: the coder writes it (no deterministic executor)

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def names(self) -> set[str]:
        """Every identifier this operation is about (old and new names, modules): what request
        coverage matches the request's words against."""

    def introduces(self) -> set[str]:
        """Names this operation creates, which later operations of a plan may name before they exist."""
        return set()

    def checked(self, tree: SourceTree) -> Operation:
        """This operation with everything it leaves open resolved against the tree as it is
        now (which file, which module), or CodemodError saying why it cannot run."""
        return self

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        raise CodemodError(f"{self.describe()} has no deterministic executor")

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        return []


def the_one(found: list[T], describe: Callable[[T], str], *, missing: str, choose: str) -> T:
    """The single item of `found`: NotFound (`missing`) when none, CodemodError listing them and
    saying how to `choose` when several."""
    if not found:
        raise NotFound(missing)
    if len(found) > 1:
        raise CodemodError(f"several match ({'; '.join(describe(item) for item in found)}); {choose}")
    return found[0]


def read_tree(root: Path) -> SourceTree:
    return SourceTree.read(root, python_files(root, stubs=False))


def code_uses(tree: SourceTree, name: str, *, skip: set[tuple[str, int]] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """`path:line` of every place Python code binds or reads `name` (definitions, imports,
    names, attributes, `__all__` strings), except the (path, line) pairs in `skip`."""
    found: list[str] = []
    for rel, parsed in sorted(tree.trees.items()):
        lines: set[int] = set()
        for node in ast.walk(parsed):
            hit = (
                (isinstance(node, ast.Name) and node.id == name)
                or (isinstance(node, ast.Attribute) and node.attr == name)
                or (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name)
                or (isinstance(node, ast.alias) and name in ((node.asname or ""), node.name.rsplit(".", 1)[-1]))
                or (isinstance(node, ast.arg) and node.arg == name)
                or (isinstance(node, ast.Constant) and node.value == name)
            )
            if hit and hasattr(node, "lineno"):
                lines.add(node.lineno)
        found.extend(f"{rel}:{line}" for line in sorted(lines) if (rel, line) not in skip)
    return found


def run_probe(root: Path, env: TestEnvironment | None, script: str, payload: object) -> dict[str, object]:
    """Run `script` (Python source that reads a JSON payload from argv[1] and prints one JSON
    object last) in the repository's interpreter and sandbox, from `root`, with the workspace
    first on the path. A crash or a timeout comes back as {"error": …}."""
    from turnout.tools.sandbox import Sandbox

    python = env.python if env else sys.executable
    pythonpath = env.pythonpath if env else []
    sandbox = env.runner() if env else Sandbox.resolve()
    argv, environment = sandbox.process([python, "-c", script, json.dumps(payload)], root=root, python=python,
                                        pythonpath=pythonpath)
    try:
        done = subprocess.run(argv, cwd=root, env=environment,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"the check did not finish in {PROBE_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:300]}
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result
