"""Keeping `from old_module import name` working after `name` moved, in any import order.

The easy case: the new module does not import the old one, so the old module simply says
`from new_module import name` among its imports. The usual case: the moved function uses
the old module's constants or helpers, so the new module imports the old one, and rope's
`from new_module import name` at the top of the old module is an import cycle that fails
(measured: `ImportError: cannot import name ... from partially initialized module`). Put
last instead, it fails whenever the new module is imported first. What works in every
order: the old module imports the new one *as a module* at its end, reaches the function
as `new_module.name` at call time, and re-exports it through a module `__getattr__`
(PEP 562). A module that still imports `name` from the old one at import time while the
new module imports it (a longer cycle) gets the same treatment: a module import and
call-time `new_module.name`.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import GlobalScope, ScopeProvider

from turnout.tools._codemod_targets import module_level
from turnout.tools._move_fixups import (
    AllEntries,
    DropImports,
    Resolver,
    Spacing,
    binds,
    header_end,
    names_used,
    repoint,
)

REEXPORT = "# re-export: moved to"


class _Unqualify(cst.CSTTransformer):
    """`pkg.new.name` -> `name`."""

    def __init__(self, dotted: str, name: str) -> None:
        self.dotted, self.name = dotted, name

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        from libcst.helpers import get_full_name_for_node

        return cst.Name(self.name) if get_full_name_for_node(original) == self.dotted else updated


def _qualify_globals(module: cst.Module, name: str, dotted: str) -> cst.Module:
    """Every use of the module-global `name` becomes `dotted` (scopes resolved by libcst, so
    parameters, locals and attributes of the same name are left alone)."""
    wrapper = cst.MetadataWrapper(module)
    scopes = {s for s in wrapper.resolve(ScopeProvider).values() if s is not None}
    uses = {id(access.node) for scope in scopes for access in scope.accesses[name]
            if all(isinstance(r.scope, GlobalScope) for r in access.referents)}

    class Qualify(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
            return cst.parse_expression(dotted) if id(original) in uses else updated

    return wrapper.module.visit(Qualify())


def _imports_module(module: cst.Module, dotted: str) -> bool:
    return any(isinstance(s, ast.Import) and any(a.name == dotted and not a.asname for a in s.names)
               for s in module_level(ast.parse(module.code).body))


def _generated_getattr(body: Sequence[cst.BaseStatement]) -> int | None:
    """Index of the module `__getattr__` an earlier move wrote here, if there is one."""
    for index, stmt in enumerate(body):
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__getattr__" \
                and REEXPORT in cst.Module(body=[stmt]).code:
            return index
    return None


def _lazy_reexport(module: cst.Module, name: str, destination: str) -> cst.Module:
    """Import `destination` last and re-export `name` from a module `__getattr__`, adding to
    the one an earlier move wrote, if any."""
    body = list(module.body)
    two = [cst.EmptyLine(), cst.EmptyLine()]
    at = _generated_getattr(body)
    if at is None:
        importing = cst.parse_statement(
            "# Moved out of this module, into modules that import from it: imported last and\n"
            "# re-exported on first use, so this module and those import in either order.\n"
            f"import {destination}  # noqa: E402\n")
        getter = cst.parse_statement(
            "def __getattr__(attribute: str):\n"
            "    raise AttributeError(f\"module {__name__!r} has no attribute {attribute!r}\")\n")
        body += [importing.with_changes(leading_lines=[*two, *importing.leading_lines]),
                 getter.with_changes(leading_lines=two)]
        at = len(body) - 1
    elif not _imports_module(module, destination):
        body.insert(at, cst.parse_statement(f"import {destination}  # noqa: E402\n").with_changes(leading_lines=two))
        at += 1
    getter = body[at]
    assert isinstance(getter, cst.FunctionDef) and isinstance(getter.body, cst.IndentedBlock)
    branch = cst.parse_statement(f"if attribute == \"{name}\":  {REEXPORT} {destination}\n"
                                 f"    return {destination}.{name}\n")
    statements = list(getter.body.body)
    statements.insert(len(statements) - 1, branch)
    body[at] = getter.with_changes(body=getter.body.with_changes(body=statements))
    return module.with_changes(body=body)


def fix_old_module(source: str, resolve: Resolver, *, name: str, destination: str, had_all: bool,
                   cyclic: bool, had_import: bool) -> str:
    """Replace rope's import of the moved name in the old module with a re-export that works
    (see the module docstring). `had_import`: the old module imported `destination` before
    the move, so that import is the user's and stays."""
    module = cst.parse_module(source).visit(DropImports(
        resolve, lambda m, n: (m == destination and n == name) or n == "__all__",
        lambda m: m == destination and not had_import))
    module = module.visit(_Unqualify(f"{destination}.{name}", name)).visit(Spacing())
    if cyclic and (_generated_getattr(module.body) is not None or not binds(module.code, "__getattr__")):
        module = _lazy_reexport(_qualify_globals(module, name, f"{destination}.{name}"), name, destination)
    else:
        unused = not had_all and name not in names_used(module.code)
        codes = [c for c, wanted in (("E402", cyclic), ("F401", unused)) if wanted]
        comment = f"# noqa: {', '.join(codes)} (re-export: moved to {destination})" if codes \
            else f"{REEXPORT} {destination}"
        statement = cst.parse_statement(f"from {destination} import {name}  {comment}\n")
        body = list(module.body)
        if cyclic:  # the module has a __getattr__ of its own: last is the best place left
            body.append(statement.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]))
        else:
            body.insert(header_end(body), statement)
        module = module.with_changes(body=body)
    if had_all:
        module = module.visit(AllEntries(name, add=True))
    return module.code


def call_time(source: str, resolve: Resolver, *, old_module: str, name: str, destination: str) -> str:
    """`from old import name` -> `import destination` (last), and uses -> `destination.name`.

    For a module the destination imports: importing a partly initialised module works,
    reading a name from it does not, so the name is read when the code runs; and the import
    comes last so that everything the destination wants from this module exists by then. An aliased
    import (`import name as other`) is left as it is."""
    tree = ast.parse(source)
    if any(isinstance(n, ast.ImportFrom) and any(a.name == name and a.asname for a in n.names) for n in ast.walk(tree)):
        return source
    module = cst.parse_module(repoint(source, resolve, old_module=old_module, name=name, destination=destination))
    module = module.visit(DropImports(resolve, lambda m, n: m == destination and n == name))
    module = _qualify_globals(module, name, f"{destination}.{name}")
    if not _imports_module(module, destination):
        importing = cst.parse_statement(
            f"# {destination} imports this module: imported last, and used when the code runs.\n"
            f"import {destination}  # noqa: E402\n")
        two = [cst.EmptyLine(), cst.EmptyLine()]
        module = module.with_changes(body=[*module.body, importing.with_changes(
            leading_lines=[*two, *importing.leading_lines])])
    return module.code
