"""Finding what a codemod acts on: the one definition a name refers to, and what it may collide with.

Read with `ast` from the files as they are now (not from the code index cache: a codemod
runs on a fresh copy of the repository, and a stale cache would point rope at the wrong
offset). Only module-level functions and classes, methods of module-level classes and
modules themselves are candidates: those are what rope can rename everywhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from turnout.tools._chunking import parse_python
from turnout.tools._codemod_files import char_column, is_package_init, module_name, resolve_relative

Kind: TypeAlias = Literal["function", "class", "method", "module"]
_DEF_NAME = re.compile(r"(?:async\s+)?def\s+(\w+)|class\s+(\w+)")


@dataclass(frozen=True)
class Definition:
    """One renameable thing. `line`/`column` locate its name (1-based line, character column)."""

    kind: Kind
    qualname: str  # "load", "Invoice.add_line", or the dotted module for kind "module"
    module: str
    path: str
    line: int
    column: int | None  # None for modules: rope renames a module by its resource

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def full_name(self) -> str:
        return self.module if self.kind == "module" else f"{self.module}.{self.qualname}"

    def describe(self) -> str:
        return f"{self.kind} {self.full_name} ({self.path}:{self.line})"


@dataclass
class SourceTree:
    """The parsed `.py` files of a root: path -> (module name, tree, text); unparsable files listed apart."""

    root: Path
    trees: dict[str, ast.Module]
    modules: dict[str, str]
    unparsable: list[str]
    texts: dict[str, str]  # the text each tree was parsed from, for turning its columns into characters

    @classmethod
    def read(cls, root: Path, rels: list[str]) -> SourceTree:
        trees, modules, unparsable, texts = {}, {}, [], {}
        for rel in rels:
            modules[rel] = module_name(root, rel)
            try:
                text = (root / rel).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                tree = None
            else:
                tree = parse_python(text)
            if tree is None:
                unparsable.append(rel)
            else:
                trees[rel], texts[rel] = tree, text
        return cls(root=root, trees=trees, modules=modules, unparsable=unparsable, texts=texts)

    def path_of(self, module: str) -> str | None:
        """The `.py` file of a dotted module (a package's `__init__.py`), if it is in the tree."""
        found = [rel for rel, name in self.modules.items() if name == module and rel.endswith(".py")]
        return min(found, key=lambda rel: (not is_package_init(rel), rel)) if found else None


def module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level: the body, and the branches of top-level if/try blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from module_level(stmt.body)
            yield from module_level(stmt.orelse)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                yield from module_level(block)


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    """Every parameter of a function, in the order its signature lists them."""
    a = node.args
    return [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs, *([a.kwarg] if a.kwarg else [])]


def bound_names(statements: Iterator[ast.stmt] | list[ast.stmt]) -> set[str]:
    """Names these statements bind in their own scope (definitions, assignments, imports)."""
    names: set[str] = set()
    for stmt in statements:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor | ast.With):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                [item.optional_vars for item in stmt.items if item.optional_vars]
                if isinstance(stmt, ast.With) else [stmt.target])
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    names.discard("*")
    return names


def _name_column(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    line = lines[node.lineno - 1]
    start = char_column(line, node.col_offset)
    match = _DEF_NAME.search(line, start)
    return match.start(1) if match and match.group(1) else (match.start(2) if match else start)


def _in_path(rel: str, path: str | None) -> bool:
    """Is the file `rel` the file `path` names (a package may be named by its directory)?"""
    return path is None or path in (rel, rel.rsplit("/__init__.py", 1)[0])


def definitions(tree: SourceTree, path: str | None = None) -> Iterator[Definition]:
    """Every module, module-level function and class, and method of a module-level class
    (only those in the file `path`, when given)."""
    for rel, module in sorted(tree.modules.items()):
        if rel.endswith(".pyi") or not _in_path(rel, path):
            continue
        yield Definition("module", module, module, rel, 1, None)
        parsed = tree.trees.get(rel)
        if parsed is None:
            continue
        lines = tree.texts[rel].splitlines()
        for stmt in module_level(parsed.body):
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                yield Definition("function", stmt.name, module, rel, stmt.lineno, _name_column(lines, stmt))
            elif isinstance(stmt, ast.ClassDef):
                yield Definition("class", stmt.name, module, rel, stmt.lineno, _name_column(lines, stmt))
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        yield Definition("method", f"{stmt.name}.{item.name}", module, rel,
                                         item.lineno, _name_column(lines, item))


def _matches(definition: Definition, old: str) -> bool:
    if definition.kind == "module":
        return definition.module == old or definition.module.endswith("." + old)
    return old in (definition.qualname, definition.full_name) or definition.full_name.endswith("." + old)


def find(tree: SourceTree, old: str, kind: Kind | Literal["auto"], path: str | None) -> list[Definition]:
    """Definitions `old` may name, one per symbol (overloads and if/else twins count once)."""
    found: dict[tuple[str, str], Definition] = {}
    for definition in definitions(tree, path):
        if kind != "auto" and definition.kind != kind:
            continue
        if _matches(definition, old):
            found.setdefault((definition.kind, definition.full_name), definition)
    return list(found.values())


def class_body_names(tree: ast.Module, class_name: str) -> set[str]:
    for stmt in module_level(tree.body):
        if isinstance(stmt, ast.ClassDef) and stmt.name == class_name:
            return bound_names(stmt.body)
    return set()


def import_graph(tree: SourceTree) -> dict[str, set[str]]:
    """Module -> the repository modules it imports when it is imported. Imports inside
    functions and under `if TYPE_CHECKING:` are left out, and so are the parent packages an
    import implies: Python runs a package's `__init__` before any of its modules, so a cycle
    through it does not fail the way a cycle between two modules does."""
    known = set(tree.modules.values())
    graph: dict[str, set[str]] = {}
    for rel, parsed in tree.trees.items():
        module = tree.modules[rel]
        edges: set[str] = set()
        skipped = {id(s) for stmt in parsed.body if isinstance(stmt, ast.If)
                   and "TYPE_CHECKING" in (getattr(stmt.test, "id", ""), getattr(stmt.test, "attr", ""))
                   for s in ast.walk(stmt)}
        for stmt in module_level(parsed.body):
            if id(stmt) in skipped:
                continue
            names: list[str] = []
            if isinstance(stmt, ast.Import):
                names = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                base = resolve_relative(module, is_package_init(rel), stmt.module, stmt.level)
                names = [base, *(f"{base}.{a.name}" for a in stmt.names)]
            edges.update(n for n in names if n in known)
        graph.setdefault(module, set()).update(edges - {module})
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    """Does importing `start` import `goal` (directly or through other modules)?"""
    seen, stack = set(), [start]
    while stack:
        module = stack.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            stack.extend(graph.get(module, ()))
    return False
