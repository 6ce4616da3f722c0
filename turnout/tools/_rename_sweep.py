"""After rope renames a symbol: find what it left behind, and fix what is certainly a reference.

Rope never reads `.pyi` stubs, misses `super().old()` calls and uses it cannot type, and
renames a module file but not the stub beside it. This sweep reads every `.py` and `.pyi`
file with `ast`, decides which leftover uses of the old name certainly mean the renamed
thing (the stub's own definition, an import from the renamed symbol's module, a bare name
in a module that imports it, `self.old` inside the class, an `__all__` entry), and rewrites
exactly those identifier tokens. Every edit must land on a NAME token from `tokenize` (or
an `__all__` string), so strings, comments and longer names are never touched; anything
uncertain (`obj.old` on an untyped object, `getattr(x, "old")`) is left for the caller to
report.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

from turnout.tools._codemod_files import is_package_init, resolve_relative
from turnout.tools._codemod_targets import Kind, bound_names, module_level
from turnout.tools._source_view import (
    DEFS,
    Edit,
    View,
    alias_edits,
    all_edits,
    apply,
    attr_edit,
    def_edits,
    dotted,
    name_edit,
    other_bindings,
    read_view,
)


@dataclass(frozen=True)
class RenameTarget:
    """What was renamed: bare `old` -> `new`, defined in `module` (for kind module: the old
    dotted module, renamed to `new_module`); `owner` is the class of a method."""

    kind: Kind
    old: str
    new: str
    module: str
    new_module: str
    owner: str | None = None


# -- functions and classes -------------------------------------------------------------


def owners(views: list[View], target: RenameTarget) -> set[str]:
    """The defining module and the modules that re-export the symbol (a package `__init__`)."""
    found = {target.module}
    grew = True
    while grew:
        grew = False
        for each in views:
            if each.module in found:
                continue
            for stmt in module_level(each.tree.body):
                if isinstance(stmt, ast.ImportFrom) and any(a.name in (target.old, target.new) for a in stmt.names):
                    base = resolve_relative(each.module, is_package_init(each.rel), stmt.module, stmt.level)
                    if base in found:
                        found.add(each.module)
                        grew = True
                        break
    return found


def _symbol_edits(view: View, target: RenameTarget, ours: set[str]) -> list[Edit]:
    old, new = target.old, target.new
    edits: list[Edit] = []
    handled: set[int] = set()
    binds_new = False
    if view.is_stub and view.module == target.module:
        for stmt in module_level(view.tree.body):
            if isinstance(stmt, DEFS) and stmt.name == old:
                edits += def_edits(view, stmt, new)
                handled.add(id(stmt))
                binds_new = True
    for node in ast.walk(view.tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve_relative(view.module, is_package_init(view.rel), node.module, node.level)
            if base not in ours:
                continue
            for alias in node.names:
                if alias.name == old:
                    edits += alias_edits(view, alias, old, new)
                    if alias.asname in (None, old):
                        handled.add(id(node))
                        binds_new = True
                elif alias.name == "*":
                    binds_new = True
    if not other_bindings(view, old, handled) and not hasattr(builtins, old) and (
            binds_new or view.module == target.module):
        edits += [name_edit(view, n, new) for n in ast.walk(view.tree) if isinstance(n, ast.Name) and n.id == old]
    for node in ast.walk(view.tree):
        if isinstance(node, ast.Attribute) and node.attr == old:
            receiver = dotted(node.value)
            head, _, rest = (receiver or "").partition(".")
            if receiver and head in view.imports:
                resolved = ".".join(p for p in (view.imports[head], rest) if p)
                if resolved in ours:
                    edits.append(attr_edit(view, node, new))
    if binds_new or view.module == target.module or new in bound_names(list(module_level(view.tree.body))):
        edits += all_edits(view, old, new)
    return edits


# -- methods ---------------------------------------------------------------------------


def hierarchy(views: list[View], owner: str) -> set[str]:
    """`owner` and every class, anywhere, that subclasses it (by name: no imports are followed)."""
    classes = [n for v in views for n in ast.walk(v.tree) if isinstance(n, ast.ClassDef)]
    found = {owner}
    grew = True
    while grew:
        grew = False
        for cls in classes:
            bases = {(dotted(b) or "").rsplit(".", 1)[-1] for b in cls.bases}
            if cls.name not in found and bases & found:
                found.add(cls.name)
                grew = True
    return found


def _annotation_class(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.strip().rsplit(".", 1)[-1]
    return (dotted(node) or "").rsplit(".", 1)[-1] if node is not None else None


class _MethodUses(ast.NodeVisitor):
    """Attribute uses `recv.old` whose receiver is certainly an instance (or the class) of `classes`."""

    def __init__(self, view: View, old: str, classes: set[str]) -> None:
        self.view, self.old, self.classes = view, old, classes
        self.found: list[ast.Attribute] = []
        self.defs: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []
        self._class: list[str | None] = [None]
        self._typed: list[set[str]] = [set()]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.name in self.classes:
            self.defs += [f for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                          and f.name == self.old]
        self._class.append(node.name)
        self._typed.append(set())
        self.generic_visit(node)
        self._class.pop()
        self._typed.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        typed = {a.arg for a in arguments if _annotation_class(a.annotation) in self.classes}
        if self._class[-1] in self.classes and arguments:
            typed.add(arguments[0].arg)  # self / cls
        for stmt in ast.walk(node):
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) \
                    and (dotted(stmt.value.func) or "").rsplit(".", 1)[-1] in self.classes:
                typed.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        self._class.append(self._class[-1] if self._class[-1] in self.classes else None)
        self._typed.append(typed)
        self.generic_visit(node)
        self._class.pop()
        self._typed.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == self.old:
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
                certain = self._class[-1] in self.classes
            elif isinstance(value, ast.Name):
                certain = value.id in self._typed[-1] or value.id in self.classes
            else:
                certain = False
            if certain:
                self.found.append(node)
        self.generic_visit(node)


def _method_edits(view: View, target: RenameTarget, classes: set[str]) -> list[Edit]:
    uses = _MethodUses(view, target.old, classes)
    uses.visit(view.tree)
    edits = [edit for node in uses.defs for edit in def_edits(view, node, target.new)]
    return edits + [attr_edit(view, node, target.new) for node in uses.found]


# -- modules ---------------------------------------------------------------------------


def _from_clause(view: View, node: ast.ImportFrom) -> list[tuple[int, int]]:
    """NAME token positions of the module path written in `from <path> import ...`."""
    start = (node.lineno, view.column(node.lineno, node.col_offset))
    ordered = sorted(p for p in view.names if p > start)
    written = node.module.split(".") if node.module else []
    return ordered[: len(written)]


def _module_edits(view: View, target: RenameTarget) -> list[Edit]:
    old_parts = target.module.split(".")
    parent = ".".join(old_parts[:-1])
    index = len(old_parts) - 1
    old, new = target.old, target.new
    edits: list[Edit] = []
    handled: set[int] = set()
    binds_new = False
    for node in ast.walk(view.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == target.module or alias.name.startswith(target.module + "."):
                    edits.append(Edit(*_nth_component(view, alias, index), old, new))
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(view.module, is_package_init(view.rel), node.module, node.level)
            if base == target.module or base.startswith(target.module + "."):
                written = _from_clause(view, node)
                position = index - (len(base.split(".")) - len(written))
                if 0 <= position < len(written):
                    edits.append(Edit(*written[position], old, new))
            elif parent and base == parent:
                for alias in node.names:
                    if alias.name == old:
                        edits += alias_edits(view, alias, old, new)
                        if alias.asname in (None, old):
                            handled.add(id(node))
                            binds_new = True
        elif isinstance(node, ast.Attribute) and node.attr == old and dotted(node) == target.module:
            head = target.module.split(".")[0]
            if view.imports.get(head) == head:
                edits.append(attr_edit(view, node, new))
    if binds_new and not other_bindings(view, old, handled):
        edits += [name_edit(view, n, new) for n in ast.walk(view.tree) if isinstance(n, ast.Name) and n.id == old]
    return edits


def _nth_component(view: View, alias: ast.alias, index: int) -> tuple[int, int]:
    start = (alias.lineno, view.column(alias.lineno, alias.col_offset))
    return sorted(p for p in view.names if p >= start)[index]


def sweep(root: Path, modules: dict[str, str], target: RenameTarget) -> list[str]:
    """Rewrite the certain leftovers of a rename in every `.py`/`.pyi` file; return the files changed."""
    views = [v for rel, module in sorted(modules.items()) if (v := read_view(root, rel, module)) is not None]
    if target.kind == "method":
        classes = hierarchy(views, target.owner or "")
        plan = {v.rel: _method_edits(v, target, classes) for v in views}
    elif target.kind == "module":
        plan = {v.rel: _module_edits(v, target) for v in views}
    else:
        ours = owners(views, target)
        plan = {v.rel: _symbol_edits(v, target, ours) for v in views}
    changed = []
    for each in views:
        text = apply(each, plan[each.rel]) if plan[each.rel] else None
        if text is not None and text != each.text:
            (root / each.rel).write_bytes(text.encode("utf-8"))
            changed.append(each.rel)
    return changed
