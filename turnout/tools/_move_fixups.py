"""After rope moves a function: the import-level repairs, as libcst edits that keep formatting.

Measured on rope 1.15: the destination imports what the function used from the old module
*including `__all__`*, plus names the function never uses (`from pkg.core import __all__,
RATE, helper, taxed`); duplicate imports can appear; the moved code is pasted with no
blank lines around it; and rope's import tidying drops imports nothing in the file uses,
which in a package `__init__` are re-exports. This module drops, dedupes, repoints and
restores imports, keeps `__all__` lists right and spaces definitions; what keeps the old
module's imports working lives in `_move_reexport`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import TypeVar

import libcst as cst
from libcst.helpers import get_full_name_for_node

from turnout.tools._codemod_targets import bound_names, module_level

Resolver = Callable[[cst.ImportFrom], str]
_Item = TypeVar("_Item", cst.ImportAlias, cst.Element)


def removed(items: Sequence[_Item], drop: Callable[[_Item], bool]) -> list[_Item]:
    """`items` without the dropped ones; the new last keeps the old last's comma (or its absence)."""
    kept = [item for item in items if not drop(item)]
    if kept and items and drop(items[-1]):
        kept[-1] = kept[-1].with_changes(comma=items[-1].comma)
    return kept


def appended(items: Sequence[_Item], new: _Item) -> list[_Item]:
    """`items` + `new`, spaced as the items are (a one-per-line list stays one per line)."""
    if not items:
        return [new]
    last = items[-1]
    separator = items[-2].comma if len(items) > 1 and isinstance(items[-2].comma, cst.Comma) \
        else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [*items[:-1], last.with_changes(comma=separator), new.with_changes(comma=last.comma)]


def _alias_name(alias: cst.ImportAlias) -> str:
    return get_full_name_for_node(alias.name) or ""


class DropImports(cst.CSTTransformer):
    """Remove `from <module> import <name>` aliases, and `import <module>`, that the predicates pick."""

    def __init__(self, resolve: Resolver, drop_from: Callable[[str, str], bool],
                 drop_import: Callable[[str], bool] = lambda module: False) -> None:
        self.resolve, self.drop_from, self.drop_import = resolve, drop_from, drop_import

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom
                         ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(updated.names, cst.ImportStar):
            return updated
        module = self.resolve(original)
        kept = removed(updated.names, lambda a: self.drop_from(module, _alias_name(a)))
        return updated.with_changes(names=kept) if kept else cst.RemoveFromParent()

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import | cst.RemovalSentinel:
        kept = removed(updated.names, lambda a: not a.asname and self.drop_import(_alias_name(a)))
        return updated.with_changes(names=kept) if kept else cst.RemoveFromParent()


class _Dedupe(cst.CSTTransformer):
    """Drop module-level imports that repeat an earlier one exactly (same module, name, alias)."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.seen: set[tuple[str, str, str | None]] = set()

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> bool:
        return False  # only module-level imports: nested ones are deliberate

    def _again(self, key: tuple[str, str, str | None]) -> bool:
        if key in self.seen:
            return True
        self.seen.add(key)
        return False

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom
                         ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(updated.names, cst.ImportStar):
            return updated
        module = "from " + self.resolve(original)
        kept = removed(updated.names, lambda a: self._again((module, _alias_name(a), a.evaluated_alias)))
        return updated.with_changes(names=kept) if kept else cst.RemoveFromParent()

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import | cst.RemovalSentinel:
        kept = removed(updated.names, lambda a: self._again(("import", _alias_name(a), a.evaluated_alias)))
        return updated.with_changes(names=kept) if kept else cst.RemoveFromParent()


class AllEntries(cst.CSTTransformer):
    """Add `name` to, or remove it from, a module-level `__all__ = [...]` / `(...)`."""

    def __init__(self, name: str, *, add: bool) -> None:
        self.name, self.add = name, add

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> bool:
        return False

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if not any(isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in updated.targets) \
                or not isinstance(updated.value, cst.List | cst.Tuple):
            return updated
        elements = list(updated.value.elements)

        def named(element: cst.Element) -> bool:
            return isinstance(element.value, cst.SimpleString) and element.value.evaluated_value == self.name

        if self.add and not any(named(e) for e in elements):
            first = elements[0].value if elements else None
            quote = first.value[-1] if isinstance(first, cst.SimpleString) else '"'
            elements = appended(elements, cst.Element(cst.SimpleString(f"{quote}{self.name}{quote}")))
        elif not self.add:
            elements = removed(elements, named)
        return updated.with_changes(value=updated.value.with_changes(elements=elements))


class Spacing(cst.CSTTransformer):
    """Two blank lines between a module-level def/class and its neighbours, where rope left none."""

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body = list(updated.body)
        for index in range(1, len(body)):
            here, before = body[index], body[index - 1]
            if (isinstance(here, _DEFS) or isinstance(before, _DEFS)) and not here.leading_lines:
                body[index] = here.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        return updated.with_changes(body=body)


_DEFS = (cst.FunctionDef, cst.ClassDef)


def header_end(body: Sequence[cst.BaseStatement]) -> int:
    """Where a new import goes: after the last import of the module's header."""
    index = 0
    for position, stmt in enumerate(body):
        if isinstance(stmt, _DEFS):
            break
        if isinstance(stmt, cst.SimpleStatementLine) and stmt.body:
            small = stmt.body[0]
            if isinstance(small, cst.Import | cst.ImportFrom):
                index = position + 1
            elif position == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString):
                index = max(index, 1)
    return index


def binds(source: str, name: str) -> bool:
    """Is `name` bound at module level (or possibly, through a star import)?"""
    statements = list(module_level(ast.parse(source).body))
    return name in bound_names(statements) or any(
        isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names) for s in statements)


def all_entries(source: str) -> list[str]:
    for stmt in module_level(ast.parse(source).body):
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets) \
                and isinstance(stmt.value, ast.List | ast.Tuple):
            return [e.value for e in stmt.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def names_used(source: str) -> set[str]:
    loads = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loads | set(all_entries(source))


def _names_imported(source: str) -> set[str]:
    statements = module_level(ast.parse(source).body) if source.strip() else iter(())
    return {a.asname or a.name for s in statements if isinstance(s, ast.ImportFrom) for a in s.names}


def fix_destination(source: str, original: str, resolve: Resolver, *, name: str, destination: str,
                    old_module: str) -> str:
    """No imported `__all__`, no import of the moved name from itself, no import from the old
    module that nothing uses; definitions spaced; `name` joins the destination's `__all__`."""
    used, had = names_used(source), _names_imported(original)
    module = cst.parse_module(source).visit(DropImports(
        resolve, lambda m, n: n == "__all__" or (m == destination and n == name)
        or (m == old_module and n not in used and n not in had)))
    module = module.visit(_Dedupe(resolve)).visit(Spacing())
    if all_entries(module.code):
        module = module.visit(AllEntries(name, add=True))
    return module.code


def restore_lost_imports(source: str, original: str, absolute: Callable[[ast.ImportFrom], str], *,
                         name: str, old_module: str, destination: str) -> str:
    """Put back module-level imports rope dropped although nothing used them: re-exports.
    An import of the moved name comes back pointing at `destination`."""
    before = ast.parse(original)
    used = {n.id for n in ast.walk(before) if isinstance(n, ast.Name)} | set(all_entries(original))
    bound_now = bound_names(list(module_level(ast.parse(source).body)))
    lines: list[str] = []
    for stmt in module_level(before.body):
        if isinstance(stmt, ast.ImportFrom | ast.Import):
            for alias in stmt.names:
                local = alias.asname or (alias.name if isinstance(stmt, ast.ImportFrom) else alias.name.split(".")[0])
                if local in bound_now or local in used or alias.name == "*":
                    continue
                suffix = f" as {alias.asname}" if alias.asname else ""
                if isinstance(stmt, ast.Import):
                    lines.append(f"import {alias.name}{suffix}")
                    continue
                written = "." * stmt.level + (stmt.module or "")
                if alias.name == name and absolute(stmt) == old_module:
                    written = destination
                lines.append(f"from {written} import {alias.name}{suffix}")
    if not lines:
        return source
    module = cst.parse_module(source)
    body = list(module.body)
    at = header_end(body)
    body[at:at] = [cst.parse_statement(line + "\n") for line in lines]
    return module.with_changes(body=body).code


class _Repoint(cst.CSTTransformer):
    """`from old import name, other` -> `from old import other` and `name` from the new module,
    added to a module-level import from the new module when the file has one."""

    def __init__(self, resolve: Resolver, old_module: str, name: str, destination: str) -> None:
        self.resolve, self.old_module, self.name, self.destination = resolve, old_module, name, destination
        self.created: set[int] = set()

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
                                  ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        kept: list[cst.BaseSmallStatement] = []
        taken: list[cst.ImportAlias] = []
        for small in updated.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar) \
                    and self.resolve(small) == self.old_module:
                taken += [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in small.names
                          if _alias_name(a) == self.name]
                others = removed(small.names, lambda a: _alias_name(a) == self.name)
                if others:
                    kept.append(small.with_changes(names=others))
                continue
            kept.append(small)
        if not taken:
            return updated
        line = cst.SimpleStatementLine(
            body=[cst.ImportFrom(module=cst.parse_expression(self.destination), names=taken)],  # type: ignore[arg-type]
            leading_lines=() if kept else updated.leading_lines)
        self.created.add(id(line))
        return cst.FlattenSentinel([updated.with_changes(body=kept), line]) if kept else line

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body = list(updated.body)
        existing = next((i for i, s in enumerate(body) if id(s) not in self.created and self._from_destination(s)),
                        None)
        merged = [i for i, s in enumerate(body) if id(s) in self.created]
        if existing is None or not merged:
            return updated
        target = body[existing]
        assert isinstance(target, cst.SimpleStatementLine) and isinstance(target.body[0], cst.ImportFrom)
        statement = target.body[0]
        names = list(statement.names)  # type: ignore[arg-type]
        for index in merged:
            created = body[index]
            assert isinstance(created, cst.SimpleStatementLine) and isinstance(created.body[0], cst.ImportFrom)
            for alias in created.body[0].names:  # type: ignore[union-attr]
                if all((_alias_name(a), a.evaluated_alias) != (_alias_name(alias), alias.evaluated_alias)
                       for a in names):
                    names = appended(names, alias)
        body[existing] = target.with_changes(body=[statement.with_changes(names=names), *target.body[1:]])
        return updated.with_changes(body=[s for i, s in enumerate(body) if i not in merged])

    def _from_destination(self, statement: cst.BaseStatement) -> bool:
        return isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 \
            and isinstance(statement.body[0], cst.ImportFrom) and not statement.body[0].relative \
            and isinstance(statement.body[0].names, Sequence) \
            and get_full_name_for_node(statement.body[0].module) == self.destination  # type: ignore[arg-type]


def repoint(source: str, resolve: Resolver, *, old_module: str, name: str, destination: str) -> str:
    """Import the moved name from its new module wherever the file imported it from the old one."""
    return cst.parse_module(source).visit(_Repoint(resolve, old_module, name, destination)).code


def tidy(source: str, resolve: Resolver, *, name: str) -> str:
    """Any other changed module: no duplicate imports, no `__all__` entry for a name it lost."""
    module = cst.parse_module(source).visit(_Dedupe(resolve)).visit(Spacing())
    if name in all_entries(module.code) and not binds(module.code, name):
        module = module.visit(AllEntries(name, add=False))
    return module.code
