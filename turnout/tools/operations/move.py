"""move: one or more module-level functions or classes into a module, which may be new (its
package must exist). Imports follow them; the old module re-exports each name, so every old
import path keeps working.

Postcondition, in the repository's interpreter: each name is defined in the target module
(functions and classes report it as their `__module__`), the old module hands out the same
object, a pickle that names the old path still loads, and both modules import on their own
in a fresh interpreter (no import cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools._codemod_files import is_package_init
from turnout.tools._codemod_targets import SourceTree, bound_names, module_level
from turnout.tools.codemods import CodemodError, CodemodResult, move_function
from turnout.tools.operations._base import (
    DottedName,
    Identifier,
    Operation,
    read_tree,
    run_probe,
    the_one,
)
from turnout.tools.test_env import TestEnvironment

_PROBE = """
import importlib, json, pickle, sys
target, checks = json.loads(sys.argv[1])
found = {}
try:
    new = importlib.import_module(target)
except Exception as exc:
    print(json.dumps({"error": "import " + target + ": " + type(exc).__name__ + ": " + str(exc)[:200]}))
    raise SystemExit(0)
for name, old_module in checks:
    problems = []
    obj = getattr(new, name, None)
    if obj is None:
        problems.append(target + " has no " + name)
    elif getattr(obj, "__module__", target) != target:
        problems.append(target + "." + name + ".__module__ is " + repr(obj.__module__))
    try:
        if getattr(importlib.import_module(old_module), name) is not obj:
            problems.append(old_module + "." + name + " is not " + target + "." + name)
        if isinstance(obj, type) or callable(obj):
            old_pickle = ("c" + old_module + "\\n" + name + "\\n.").encode()
            if pickle.loads(old_pickle) is not obj:
                problems.append("a pickle naming " + old_module + "." + name + " loads something else")
    except Exception as exc:
        problems.append(old_module + "." + name + ": " + type(exc).__name__ + ": " + str(exc)[:200])
    found[name] = problems
print(json.dumps(found))
"""
_IMPORT_ALONE = "import importlib, json, sys; importlib.import_module(json.loads(sys.argv[1])); print('{}')"


class Move(Operation):
    op: Literal["move"] = "move"
    symbols: list[Identifier] = Field(min_length=1, max_length=20, description="Module-level functions or classes.")
    to_module: DottedName = Field(description="The dotted module to move them into; may be new.")
    from_module: DottedName | None = Field(None, description="Where they are now (found when omitted).")

    def describe(self) -> str:
        source = f" from {self.from_module}" if self.from_module else ""
        return f"move {', '.join(self.symbols)}{source} → {self.to_module}"

    def names(self) -> set[str]:
        found = {*self.symbols, self.to_module, *self.to_module.split(".")}
        if self.from_module:
            found.update({self.from_module, *self.from_module.split(".")})
        return found

    def introduces(self) -> set[str]:
        return {self.to_module}

    def _source(self, tree: SourceTree, name: str) -> str:
        """The file that defines `name` at module level (in from_module when given)."""
        hits = [rel for rel, parsed in sorted(tree.trees.items())
                if (self.from_module is None or tree.modules[rel] == self.from_module)
                and any(isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and s.name == name
                        for s in module_level(parsed.body))]
        where = f" in {self.from_module}" if self.from_module else ""
        return the_one(hits, lambda rel: tree.modules[rel], choose="give from_module to choose one",
                       missing=f"no module-level function or class {name!r}{where} in this repository")

    def checked(self, tree: SourceTree) -> Move:
        sources = {name: self._source(tree, name) for name in self.symbols}
        modules = {tree.modules[rel] for rel in sources.values()}
        if len(modules) > 1:
            raise CodemodError(f"{', '.join(self.symbols)} are in different modules ({', '.join(sorted(modules))}); "
                               "move them in one operation per module")
        [source_module] = modules
        if source_module == self.to_module:
            raise CodemodError(f"{', '.join(self.symbols)} already in {self.to_module}; nothing to move")
        destination = tree.path_of(self.to_module)
        if destination is None:
            parent = self.to_module.rpartition(".")[0]
            package = tree.path_of(parent) if parent else None
            if parent and (package is None or not is_package_init(package)):
                raise CodemodError(f"cannot create module {self.to_module!r}: its package {parent!r} does not exist "
                                   "in this repository; move into an existing package")
        elif taken := set(self.symbols) & bound_names(list(module_level(tree.trees[destination].body))):
            raise CodemodError(f"{', '.join(sorted(taken))} already defined in {self.to_module}; rename one first")
        return self.model_copy(update={"from_module": source_module})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        changed: set[str] = set()
        remaining, notes = [], []
        tree = read_tree(root)
        source = self._source(tree, self.symbols[0])
        for name in _dependencies_first(tree.trees[source], self.symbols):
            result = move_function(root, name, self._source(read_tree(root), name), self.to_module)
            changed.update(result.changed_files)
            remaining.extend(result.remaining)
            notes.extend(result.notes)
        destination = read_tree(root).path_of(self.to_module)
        if destination and (placed := _define_after_what_they_use(root / destination, self.symbols)):
            notes.append(f"placed {', '.join(placed)} at the end of {destination}: their definitions use names "
                         "the module defines further down")
        if kept := _reexport(root / source, self.to_module, self.symbols):
            notes.append(f"{source} re-exports {', '.join(kept)} again (a later move dropped the re-export)")
        return CodemodResult(operation="move_function", changed_files=sorted(changed), remaining=remaining, notes=notes)

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        if not self.from_module:
            return ["the move was never checked against the repository, so its old module is unknown"]
        tree = read_tree(root)
        destination = tree.path_of(self.to_module)
        if destination is None or destination not in tree.trees:
            return [f"{self.to_module} does not exist after the move"]
        defined = {s.name for s in module_level(tree.trees[destination].body)
                   if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
        missing = [f"{name} is not defined in {self.to_module} ({destination})"
                   for name in self.symbols if name not in defined]
        found = run_probe(root, env, _PROBE, [self.to_module, [[n, self.from_module] for n in self.symbols]])
        if "error" in found:
            return [*missing, f"the moved names could not be checked: {found['error']}"]
        missing += [problem for name in self.symbols for problem in found.get(name, [])]  # type: ignore[union-attr]
        for module in (self.to_module, self.from_module):
            alone = run_probe(root, env, _IMPORT_ALONE, module)
            if "error" in alone:
                missing.append(f"{module} does not import on its own (an import cycle?): {alone['error']}")
        return missing


def _dependencies_first(parsed: ast.Module, names: list[str]) -> list[str]:
    """`names` with those the others use first: moving a user before what it uses would import
    the used name into the target module, where the next move then collides with it."""
    bodies = {s.name: s for s in module_level(parsed.body)
              if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and s.name in names}
    used = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & set(names) - {name}
            for name, node in bodies.items()}
    ordered: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in ordered or name in seen:
            return
        for dependency in sorted(used.get(name, ())):
            visit(dependency, seen | {name})
        ordered.append(name)

    for name in names:
        visit(name, frozenset())
    return ordered


def _reexport(path: Path, to_module: str, names: list[str]) -> list[str]:
    """Make the old module hand out every moved name again (bound, or served by the lazy
    `__getattr__` a cyclic move writes); returns the names it had to add."""
    text = path.read_text(encoding="utf-8")
    parsed = ast.parse(text)
    served = {n.value for s in module_level(parsed.body) if isinstance(s, ast.FunctionDef) and s.name == "__getattr__"
              for n in ast.walk(s) if isinstance(n, ast.Constant) and isinstance(n.value, str)}  # a lazy re-export
    missing = [n for n in names if n not in bound_names(list(module_level(parsed.body))) | served]
    if missing:
        lines = "".join(f"from {to_module} import {n}  # noqa: F401 (re-export: moved to {to_module})\n"
                        for n in missing)
        path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + lines, encoding="utf-8")
    return missing


def _used_at_definition(node: ast.stmt) -> set[str]:
    """Names a def or class statement evaluates when it runs: decorators, defaults, annotations
    (unless postponed), bases, and a class body's own statements."""
    parts: list[ast.AST] = list(getattr(node, "decorator_list", []))
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        a = node.args
        parts += [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
        parts += [arg.annotation for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs) if arg.annotation]
        parts += [node.returns] if node.returns else []
    elif isinstance(node, ast.ClassDef):
        parts += [*node.bases, *(k.value for k in node.keywords)]
        parts += [s for s in node.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    return {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}


def _define_after_what_they_use(path: Path, names: list[str]) -> list[str]:
    """Move each moved definition to the end of the module when it uses, as it is defined, a
    name the module binds only further down (rope puts it right after the imports)."""
    placed = []
    for name in names:
        text = path.read_text(encoding="utf-8")
        parsed = ast.parse(text)
        postponed = any(isinstance(s, ast.ImportFrom) and s.module == "__future__" and
                        any(a.name == "annotations" for a in s.names) for s in parsed.body)
        body = list(parsed.body)
        index = next((i for i, s in enumerate(body) if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef |
                                                                   ast.ClassDef) and s.name == name), None)
        if index is None or index == len(body) - 1:
            continue
        node = body[index]
        used = _used_at_definition(node)
        if postponed and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            used = {n.id for part in [*node.decorator_list, *node.args.defaults] for n in ast.walk(part)
                    if isinstance(n, ast.Name)}
        if not used & bound_names(body[index + 1:]):
            continue
        lines = text.splitlines(keepends=True)
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        end = node.end_lineno or node.lineno
        block = "".join(lines[start:end]).rstrip("\n") + "\n"
        rest = "".join(lines[:start]).rstrip("\n") + "\n" + "".join(lines[end:]).lstrip("\n")
        path.write_text(rest.rstrip("\n") + "\n\n\n" + block, encoding="utf-8")
        placed.append(name)
    return placed
