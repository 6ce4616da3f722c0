"""add_type_hints: annotate the functions of some files, modules or symbols with the types mypy
infers for them, and prove the result with mypy at the strictness the plan states.

The types come from mypy's own signature inference (`dmypy suggest`), which reads how each
function is called across the repository, tests included, and what it returns; libcst
writes them into the source with the imports they need (`_inferred_types`). Where mypy can
only say `Any`, infers nothing writable, or its types make it report an error inside the
function, the function is typed with `Any` where it had no hint, and the notes count and
name each such function.

Postcondition, in the repository's environment: every targeted function has a type for each
parameter and its return, and mypy reports no error in the targets at the plan's strictness
(`basic`: mypy's defaults; `typed-defs`: --disallow-untyped-defs --disallow-incomplete-defs;
`strict`: --strict), with the repository's own mypy configuration; a third-party package
without type information (`import-untyped`, `import-not-found`) is not counted against the
hints. The repository's own mypy
runs the check when its environment has one; otherwise turnout's, pointed at that
environment's packages.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools._codemod_run import relative, transaction
from turnout.tools._codemod_targets import SourceTree, module_level
from turnout.tools.codemods import CodemodError, CodemodResult
from turnout.tools.operations._base import NotFound, Operation, read_tree
from turnout.tools.operations._inferred_types import (
    MYPY_TIMEOUT_S,
    TargetFunction,
    all_any,
    anys,
    drop_unused_new_imports,
    importable_names,
    interpreter_facts,
    suggest,
    write,
)
from turnout.tools.test_env import TestEnvironment

Strictness = Literal["basic", "typed-defs", "strict"]
STRICTNESS_FLAGS: dict[str, list[str]] = {
    "basic": [],
    "typed-defs": ["--disallow-untyped-defs", "--disallow-incomplete-defs"],
    "strict": ["--strict"],
}
MAX_FUNCTIONS = 300
# A third-party package without type information: about the environment, not the hints.
NOT_ABOUT_THE_HINTS = ("[import-untyped]", "[import-not-found]")
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class AddTypeHints(Operation):
    op: Literal["add_type_hints"] = "add_type_hints"
    targets: list[str] = Field(min_length=1, max_length=50, description=(
        "What to annotate: files or folders (`pkg/calc.py`, `src/pkg/`), dotted modules (`pkg.calc`), "
        "or functions and classes (`scale`, `Cart`, `pkg/calc.py:Cart.total`)."))
    strictness: Strictness = Field("typed-defs", description=(
        "What mypy must accept afterwards: basic (its defaults), typed-defs (every function fully typed) or strict."))

    def describe(self) -> str:
        return f"add type hints to {', '.join(self.targets)} (mypy {self.strictness})"

    def names(self) -> set[str]:
        return {part for target in self.targets for part in re.split(r"[:/]", target) if part}

    def checked(self, tree: SourceTree) -> AddTypeHints:
        return self.model_copy(update={"targets": [_resolve(tree, target) for target in self.targets]})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        return transaction(root, "add_type_hints", lambda _snapshot: ([], _annotate(root, self.targets, self.strictness, env)))

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        tree = read_tree(root)
        functions = _functions(tree, self.targets)
        missing = []
        if untyped := [f.label for f in functions if not f.fully_typed]:
            missing.append(f"{len(untyped)} function(s) still without full type hints: {_listed(untyped)}")
        files = sorted({rel for t in self.targets for rel in _files(tree, t.partition(":")[0])})
        errors, failure = run_mypy(root, env, files, self.strictness)
        if failure:
            return [*missing, f"mypy could not check the targets: {failure}"]
        spans = {(f.path, line) for f in functions if ":" in f.target for line in range(f.first_line, f.last_line + 1)}
        whole = {t for t in self.targets if ":" not in t}
        errors = [e for e in errors if _in_targets(e, whole, spans)]
        if errors:
            missing.append(f"mypy ({self.strictness}) reports {len(errors)} error(s) in the targets: "
                           + _listed(errors, 5, "; "))
        return missing


def _annotate(root: Path, targets: list[str], strictness: str, env: TestEnvironment | None) -> list[str]:
    """Annotate the targets' functions that lack hints; the notes say how, function by function.

    1. mypy suggests a signature for each (one that keeps the code error-free, else its best).
    2. Methods are asked again once the first types are in (`self.items: list[int]` makes a
       method's return inferable).
    3. A function mypy suggested nothing writable for, or whose new types make mypy report an
       error in it, is typed with Any where it had no hint: its body is checked no further than before.
    """
    tree = read_tree(root)
    todo = [f for f in _functions(tree, targets) if not f.fully_typed][:MAX_FUNCTIONS]
    if not todo:
        return ["every targeted function already has type hints"]
    originals = {rel: (root / rel).read_text(encoding="utf-8") for rel in {f.path for f in todo}}
    bare = {f.label for f in todo if f.bare}
    flags, python = interpreter_facts(env)
    suggestions = suggest(root, tree, todo, flags)
    inferred, with_any = write(root, tree, todo, suggestions, python, importable=importable_names(root, env, suggestions))
    if retry := {f.label for f in todo if f.is_method} & bare & set(with_any):
        tree = read_tree(root)
        asked = [f for f in _functions(tree, targets) if f.label in retry]
        again = suggest(root, tree, asked, flags)
        better = {label: s for label, s in again.items() if anys(s) < anys(suggestions[label])}
        write(root, tree, asked, better, python, importable=importable_names(root, env, better), overwrite=True)
        with_any = [label for label in with_any if label not in better]
    tree = read_tree(root)
    current = [f for f in _functions(tree, targets) if f.label in {t.label for t in todo}]
    errors, _failure = run_mypy(root, env, sorted(originals), strictness)
    flagged = {(m[1], int(m[2])) for e in errors if (m := re.match(r"(.+?):(\d+):", e))}
    erring = [f for f in current if f.label in inferred
              and any((f.path, line) in flagged for line in range(f.first_line, f.last_line + 1))]
    unsuggested = [f for f in current if f.label not in inferred]
    loosen = {f.label: all_any(f) for f in [*erring, *unsuggested]}
    write(root, tree, current, {k: v for k, v in loosen.items() if k in bare}, python, overwrite=True)
    write(root, tree, current, {k: v for k, v in loosen.items() if k not in bare}, python)
    for rel, text in originals.items():
        drop_unused_new_imports(root / rel, text)
    notes = [f"annotated {len(todo)} function(s): {len(inferred) - len(erring)} with the types mypy infers from "
             "their callers and bodies"]
    if partly_any := sorted({*with_any} - {*loosen}):
        notes.append(f"{len(partly_any)} of those use Any somewhere (mypy saw no typed caller): {_listed(partly_any)}")
    if erring:
        notes.append(f"{len(erring)} typed with Any, because mypy's inferred types made it report errors in them: "
                     + _listed([f.label for f in erring]))
    if unsuggested:
        notes.append(f"{len(unsuggested)} typed with Any, because mypy inferred nothing writable for them: "
                     + _listed([f.label for f in unsuggested]))
    return notes


def _listed(items: list[str], most: int = 8, between: str = ", ") -> str:
    return between.join(items[:most]) + (" …" if len(items) > most else "")


def _resolve(tree: SourceTree, target: str) -> str:
    """A target as `path` (a file or a folder ending in /) or `path:Qualname`; NotFound if it names nothing."""
    path, _, qualname = target.partition(":")
    root = tree.root.resolve()
    if path.endswith(".py") or "/" in path or (root / path).is_dir():
        rel = relative(root, path, what="path")
        if rel.endswith(".py"):
            if rel not in tree.trees:
                raise NotFound(f"{rel} is not a Python file that parses here")
        elif not any(p.startswith(rel.rstrip("/") + "/") for p in tree.trees):
            raise NotFound(f"no Python files under {rel}/")
        else:
            rel = rel.rstrip("/") + "/"
        if qualname and not any(q == qualname or q.startswith(qualname + ".") for q, _n, _m in _defined(tree.trees.get(rel))):
            raise NotFound(f"{rel} defines no function or class {qualname!r}")
        return f"{rel}:{qualname}" if qualname else rel
    if module_path := tree.path_of(target):
        return module_path
    found = [f"{rel}:{q}" for rel, parsed in sorted(tree.trees.items()) for q, _n, _m in _defined(parsed)
             if target in (q, f"{tree.modules[rel]}.{q}") or "." not in target and q.rpartition(".")[2] == target]
    if not found:
        raise NotFound(f"{target!r} is not a file, module, function or class here")
    if len(found) > 1:
        raise CodemodError(f"{target!r} names several things ({', '.join(found[:5])}); give it as path:Name")
    return found[0]


def _defined(parsed: ast.Module | None) -> Iterator[tuple[str, ast.AST, bool]]:
    """(qualname, node, is_method) for module-level functions and classes and the methods of those classes."""
    if parsed is None:
        return
    for stmt in module_level(parsed.body):
        if isinstance(stmt, FunctionNode):
            yield stmt.name, stmt, False
        elif isinstance(stmt, ast.ClassDef):
            yield stmt.name, stmt, False
            for item in stmt.body:
                if isinstance(item, FunctionNode):
                    yield f"{stmt.name}.{item.name}", item, True


def _files(tree: SourceTree, path: str) -> list[str]:
    return [path] if path.endswith(".py") else sorted(r for r in tree.trees if r.startswith(path))


def _functions(tree: SourceTree, targets: list[str]) -> list[TargetFunction]:
    found: dict[str, TargetFunction] = {}
    for target in targets:
        path, _, qualname = target.partition(":")
        for rel in _files(tree, path):
            defined = list(_defined(tree.trees.get(rel)))
            repeated = {q for q, _n, _m in defined if [d[0] for d in defined].count(q) > 1}  # overloads, property setters
            for q, node, is_method in defined:
                if isinstance(node, FunctionNode) and q not in repeated and (not qualname or q == qualname or q.startswith(qualname + ".")):
                    found.setdefault(f"{rel}:{q}", TargetFunction(target, rel, tree.modules[rel], q, node, is_method))
    return list(found.values())


def _in_targets(error: str, whole: set[str], spans: set[tuple[str, int]]) -> bool:
    found = re.match(r"(.+?):(\d+):", error)
    if not found:
        return False
    path, line = found[1], int(found[2])
    return any(path == t or t.endswith("/") and path.startswith(t) for t in whole) or (path, line) in spans


# -- the check -----------------------------------------------------------------------------------


def run_mypy(root: Path, env: TestEnvironment | None, files: list[str], strictness: str) -> tuple[list[str], str | None]:
    """mypy's error lines for `files` at `strictness`, with the repository's own configuration
    (and its own mypy when its environment has one), or (…, why it could not run)."""
    python = env.python if env else sys.executable
    has_own = subprocess.run([python, "-m", "mypy", "--version"], capture_output=True, timeout=60, check=False).returncode == 0
    command = [python, "-m", "mypy"] if has_own else [sys.executable, "-m", "mypy", *interpreter_facts(env)[0]]
    with tempfile.TemporaryDirectory(prefix="turnout-mypy-") as scratch:
        try:
            done = subprocess.run(
                [*command, *STRICTNESS_FLAGS[strictness], "--follow-imports", "silent", "--cache-dir", scratch,
                 "--show-error-codes", "--no-error-summary", "--no-color-output", "--no-pretty", *files],
                cwd=root, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return [], f"mypy did not finish in {MYPY_TIMEOUT_S} s"
    errors = [line for line in done.stdout.splitlines() if ": error:" in line
              and not line.rstrip().endswith(NOT_ABOUT_THE_HINTS)]
    if done.returncode not in (0, 1) or (done.returncode == 1 and not errors):
        return [], (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}")[-300:]
    return errors, None
