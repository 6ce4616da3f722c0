"""rename: a function, class, method or module gets a new name everywhere, the old one
optionally kept as an alias (`plain`: the same object under the old name; `deprecated`: the
same, with a `DeprecationWarning` on each use, served by the module's `__getattr__`).

The alias goes where the old name was part of the module's face: the defining module, a
package `__init__` that re-exported it (by name or by `import *`), any module whose `__all__`
listed it. A plain alias joins the new name in `__all__`; a deprecated one does not (it would
warn on every `from … import *`, which a `filterwarnings = error` suite turns into a failure),
and `from pkg import old` still works through `__getattr__`. A namespace that re-binds the
renamed object under its old name (`old = curry(pkg.old)`, which rope leaves alone) is renamed
too. A renamed module (not a package) keeps its old path as a shim file that puts the renamed
module itself in `sys.modules` under the old name, so `import pkg.old` and `from pkg.old
import x` give the very objects of `pkg.new` (warning once on import when deprecated).

Postcondition: the new name is defined; no code uses the old name except the aliases; each
alias, imported in the repository's interpreter, is the renamed object (for a module: the
renamed module), and warns exactly when it is deprecated.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

from pydantic import Field

from turnout.tools._codemod_files import is_package_init, resolve_relative
from turnout.tools._codemod_targets import (
    Definition,
    SourceTree,
    bound_names,
    class_body_names,
    find,
    module_level,
)
from turnout.tools.codemods import (
    CodemodError,
    CodemodResult,
    RenameKind,
    rename_symbol,
)
from turnout.tools.operations._base import (
    DottedName,
    Identifier,
    Operation,
    code_uses,
    read_tree,
    run_probe,
    the_one,
)
from turnout.tools.test_env import TestEnvironment

AliasKind = Literal["none", "plain", "deprecated"]
DEPRECATED_TABLE = "_DEPRECATED_NAMES"
_GETATTR = f'''

def __getattr__(name: str) -> object:
    if name in {DEPRECATED_TABLE}:
        import warnings

        warnings.warn(f"{{name}} is deprecated; use {{{DEPRECATED_TABLE}[name]}}", DeprecationWarning, stacklevel=2)
        return globals()[{DEPRECATED_TABLE}[name]]
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''
_PROBE = """
import importlib, json, sys, warnings
given = json.loads(sys.argv[1])
found = {}
for module, old, new in given:
    try:
        m = importlib.import_module(module)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(m, old)
        found[module] = {"same": value is getattr(m, new),
                         "warned": any(issubclass(w.category, DeprecationWarning) for w in caught)}
    except Exception as exc:
        found[module] = {"error": type(exc).__name__ + ": " + str(exc)[:200]}
print(json.dumps(found))
"""
_MODULE_PROBE = """
import importlib, json, sys, warnings
old, new = json.loads(sys.argv[1])
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aliased = importlib.import_module(old)
    print(json.dumps({"same": aliased is importlib.import_module(new),
                      "warned": any(issubclass(w.category, DeprecationWarning) for w in caught)}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__ + ": " + str(exc)[:200]}))
"""


class Rename(Operation):
    op: Literal["rename"] = "rename"
    old: DottedName = Field(description="'load', 'Invoice.add_line' or a dotted module 'pkg.mod'.")
    new: Identifier = Field(description="The new name (for a module, its last part).")
    keep_alias: AliasKind = "none"
    kind: RenameKind = "auto"
    path: str | None = Field(None, description="The file that defines it, when several definitions share the name.")

    @property
    def old_name(self) -> str:
        return self.old.rsplit(".", 1)[-1]

    def describe(self) -> str:
        alias = f" (old name kept as a {self.keep_alias} alias)" if self.keep_alias != "none" else ""
        return f"rename {self.old} → {self.new}{alias}"

    def names(self) -> set[str]:
        return {self.old, self.old_name, self.new}

    def introduces(self) -> set[str]:
        return {self.new, self.old.rsplit(".", 1)[0] + "." + self.new}

    def _definition(self, tree: SourceTree) -> Definition:
        return the_one(find(tree, self.old, self.kind, self.path), Definition.describe,
                       missing=f"no definition of {self.old!r} in this repository",
                       choose="give path (the file that defines it) or kind")

    def checked(self, tree: SourceTree) -> Rename:
        definition = self._definition(tree)
        if self.keep_alias != "none" and definition.kind == "module" and is_package_init(definition.path):
            raise CodemodError(f"{definition.full_name} is a package; turnout keeps an alias for a renamed module, not "
                               "a package (its submodules would be imported twice); rename it without keep_alias")
        if definition.kind != "module" and self.new in _names_beside(tree, definition):
            raise CodemodError(f"{self.new!r} is already defined beside {definition.full_name}; choose another name")
        if definition.kind == "module":
            return self.model_copy(update={"kind": "module"})
        return self.model_copy(update={"kind": definition.kind, "path": definition.path})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        tree = read_tree(root)
        definition = self._definition(tree)
        sites = _alias_sites(tree, definition, self.old_name) if self.keep_alias != "none" and definition.kind != "module" else []
        result = rename_symbol(root, self.old, self.new, path=definition.path, kind=definition.kind)
        if definition.kind == "module" and self.keep_alias != "none":
            renamed = definition.module.rsplit(".", 1)[0] + "." + self.new if "." in definition.module else self.new
            (root / definition.path).write_text(_module_shim(definition.module, renamed, self.keep_alias), encoding="utf-8")
            result = result.model_copy(update={"changed_files": sorted({*result.changed_files, definition.path}), "notes": [
                *result.notes, f"kept {definition.path} as a {self.keep_alias} alias of {renamed}"]})
        rebound = rebind_sweep(root, read_tree(root), self.old_name, self.new) if definition.kind != "module" else []
        for rel in sites:
            if definition.kind == "method":
                _add_method_alias(root / rel, definition.qualname.split(".")[0], self.old_name, self.new, self.keep_alias)
            else:
                _add_module_alias(root / rel, self.old_name, self.new, self.keep_alias)
        changed = sorted(set(result.changed_files) | set(sites) | set(rebound))
        notes = [*result.notes, *([f"renamed the re-binding of {self.old_name!r} in {', '.join(rebound)}"] if rebound else []),
                 *([f"kept {self.old_name!r} as a {self.keep_alias} alias in {', '.join(sites)}"] if sites else [])]
        return result.model_copy(update={"changed_files": changed, "notes": notes})

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        tree = read_tree(root)
        renamed = self.old.rsplit(".", 1)[0] + "." + self.new if "." in self.old else self.new
        found = find(tree, renamed, self.kind, None if self.kind == "module" else self.path) or (
            find(tree, self.new, self.kind, None))  # a later operation of the plan may have moved it
        if not found:
            return [f"{renamed!r} is not defined after the rename"]
        definition = found[0]
        if definition.kind == "module":
            return self._module_problems(root, env, tree, definition)
        sites = _alias_sites(tree, definition, self.new) if self.keep_alias != "none" else []
        skip = {(rel, line) for rel in sites for line in _alias_lines(tree.trees[rel], self.old_name, self.new)}
        missing: list[str] = []
        if definition.kind == "method":
            owner = definition.qualname.split(".")[0]
            if self.keep_alias == "none" and self.old_name in class_body_names(tree.trees[definition.path], owner):
                missing.append(f"class {owner} still defines {self.old_name!r}")
        elif left := code_uses(tree, self.old_name, skip=skip):
            missing.append(f"code still uses the old name {self.old_name!r} at {', '.join(left[:8])}"
                           + (f" and {len(left) - 8} more" if len(left) > 8 else ""))
        if self.keep_alias != "none":
            missing.extend(self._alias_problems(root, env, tree, definition, sites))
        return missing

    def _module_problems(self, root: Path, env: TestEnvironment | None, tree: SourceTree, renamed: Definition) -> list[str]:
        old_module = renamed.module.rsplit(".", 1)[0] + "." + self.old_name if "." in renamed.module else self.old_name
        shim = tree.path_of(old_module)
        users = [f"{rel}:{n.lineno}" for rel, parsed in sorted(tree.trees.items()) if rel != shim for n in ast.walk(parsed)
                 if isinstance(n, ast.Import | ast.ImportFrom) and _imports_module(n, tree.modules[rel], rel, old_module)
                 or isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and ast.unparse(n) == old_module]
        missing = [f"code still imports {old_module} at {', '.join(users[:8])}"] if users else []
        if self.keep_alias == "none":
            return missing + ([f"{shim} still defines the old module {old_module}"] if shim else [])
        found = run_probe(root, env, _MODULE_PROBE, [old_module, renamed.module])
        if "error" in found:
            return [*missing, f"the old module {old_module} cannot be imported: {found['error']}"]
        if not found["same"]:
            missing.append(f"importing {old_module} does not give {renamed.module}")
        elif problem := self._warning_problem(f"importing {old_module}", found["warned"]):
            missing.append(problem)
        return missing

    def _warning_problem(self, what: str, warned: bool) -> str | None:
        """What is wrong when `what` warned though the alias is plain, or did not though it is deprecated."""
        if warned == (self.keep_alias == "deprecated"):
            return None
        return f"{what} " + ("does not warn (DeprecationWarning)" if self.keep_alias == "deprecated" else "warns")

    def _alias_problems(self, root: Path, env: TestEnvironment | None, tree: SourceTree, definition: Definition,
                        sites: list[str]) -> list[str]:
        if not sites:
            return [f"no alias {self.old_name!r} was kept"]
        if definition.kind == "method":
            owner = definition.qualname.split(".")[0]
            return [f"{rel} has no alias {owner}.{self.old_name}" for rel in sites
                    if self.old_name not in class_body_names(tree.trees[rel], owner)]
        checks = [[tree.modules[rel], self.old_name, self.new] for rel in sites]
        found = run_probe(root, env, _PROBE, checks)
        if "error" in found:
            return [f"the aliases could not be imported: {found['error']}"]
        problems = []
        for module, _old, _new in checks:
            result = found.get(module)
            if not isinstance(result, dict) or "error" in result:
                problems.append(f"{module}.{self.old_name} cannot be read: {(result or {}).get('error')}")
            elif not result["same"]:
                problems.append(f"{module}.{self.old_name} is not {module}.{self.new}")
            elif problem := self._warning_problem(f"{module}.{self.old_name}", result["warned"]):
                problems.append(problem)
        return problems


def _names_beside(tree: SourceTree, definition: Definition) -> set[str]:
    parsed = tree.trees[definition.path]
    if definition.kind == "method":
        return class_body_names(parsed, definition.qualname.split(".")[0])
    return bound_names(list(module_level(parsed.body)))


def _all_names(parsed: ast.Module) -> set[str]:
    names: set[str] = set()
    for stmt in module_level(parsed.body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
            stmt, ast.AugAssign | ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and stmt.value is not None:
            names.update(n.value for n in ast.walk(stmt.value) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return names


def _star_sources(tree: SourceTree, rel: str) -> set[str]:
    """The modules `rel` star-imports from (`from .itertoolz import *`)."""
    module, package = tree.modules[rel], is_package_init(rel)
    return {resolve_relative(module, package, stmt.module, stmt.level) for stmt in module_level(tree.trees[rel].body)
            if isinstance(stmt, ast.ImportFrom) and any(alias.name == "*" for alias in stmt.names)}


def _alias_sites(tree: SourceTree, definition: Definition, name: str) -> list[str]:
    """Files where `name` is part of the module's face: where it is defined, package `__init__`s
    that bind it or star-import it from such a file, and modules whose `__all__` lists it."""
    if definition.kind == "method":
        return [definition.path]
    sites = [definition.path]
    for rel, parsed in sorted(tree.trees.items()):
        if rel == definition.path:
            continue
        bound = bound_names(list(module_level(parsed.body)))
        if name in bound and (is_package_init(rel) or name in _all_names(parsed)):
            sites.append(rel)
    grown = True
    while grown:  # a package re-exporting a re-exporter with `import *` shows the name too
        faces = {tree.modules[rel] for rel in sites}
        more = [rel for rel in sorted(tree.trees) if rel not in sites and is_package_init(rel)
                and _star_sources(tree, rel) & faces]
        sites += more
        grown = bool(more)
    return sites


def rebind_sweep(root: Path, tree: SourceTree, old: str, new: str) -> list[str]:
    """`old = wrap(mod.new)` at module level — a namespace re-binding the renamed object under
    its old name, which rope leaves as it is — becomes `new = wrap(mod.new)`. Returns the files."""
    changed = []
    for rel, parsed in sorted(tree.trees.items()):
        lines = tree.texts[rel].splitlines(keepends=True)
        edits = []
        for stmt in module_level(parsed.body):
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id == old):
                continue
            refers = any((isinstance(n, ast.Name) and n.id == new) or (isinstance(n, ast.Attribute) and n.attr == new)
                         for n in ast.walk(stmt.value))
            if refers:
                edits.append(stmt.targets[0])
        for target in sorted(edits, key=lambda t: (t.lineno, t.col_offset), reverse=True):
            line = lines[target.lineno - 1].encode("utf-8")
            lines[target.lineno - 1] = (line[:target.col_offset] + new.encode() + line[target.end_col_offset:]).decode()  # type: ignore[misc]
        if edits:
            (root / rel).write_text("".join(lines), encoding="utf-8")
            changed.append(rel)
    return changed


def _alias_lines(parsed: ast.Module, old: str, new: str) -> set[int]:
    """Lines that belong to the alias kept for `old` (they may keep using the old name)."""
    lines: set[int] = set()
    for stmt in ast.walk(parsed):
        if not isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.FunctionDef):
            continue
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        named = {t.id for t in targets if isinstance(t, ast.Name)}
        wrapper = isinstance(stmt, ast.FunctionDef) and stmt.name == old
        if named & {"__all__", DEPRECATED_TABLE, old} or wrapper:
            lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def _add_to_all(text: str, parsed: ast.Module, old: str, new: str) -> str:
    """`__all__` lists `old` right after `new`, wherever it lists `new`."""
    lines = text.splitlines(keepends=True)
    for node in ast.walk(parsed):
        if isinstance(node, ast.Constant) and node.value == new and old not in _all_names(parsed):
            line = lines[node.lineno - 1]
            if f'"{new}"' in line or f"'{new}'" in line:
                quote = '"' if f'"{new}"' in line else "'"
                lines[node.lineno - 1] = line.replace(f"{quote}{new}{quote}", f"{quote}{new}{quote}, {quote}{old}{quote}", 1)
                return "".join(lines)
    return text


def _imports_module(node: ast.Import | ast.ImportFrom, module: str, rel: str, target: str) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == target or a.name.startswith(target + ".") for a in node.names)
    source = resolve_relative(module, is_package_init(rel), node.module, node.level)
    return source == target or source.startswith(target + ".") or any(f"{source}.{a.name}" == target for a in node.names)


def _module_shim(old: str, new: str, keep_alias: AliasKind) -> str:
    """The file left at a renamed module's old path: importing it gives the renamed module itself."""
    warning = (f'\nwarnings.warn("{old} is deprecated; import {new} instead", DeprecationWarning, stacklevel=2)'
               if keep_alias == "deprecated" else "")
    return (f'"""`{old}` was renamed `{new}`; this module keeps the old import path working'
            f'{" (deprecated)" if keep_alias == "deprecated" else ""}."""\n\n'
            f"import importlib\nimport sys\n{'import warnings' + chr(10) if warning else ''}{warning}\n"
            f'sys.modules[__name__] = importlib.import_module("{new}")\n')


def _add_module_alias(path: Path, old: str, new: str, keep_alias: AliasKind) -> None:
    text = path.read_text(encoding="utf-8")
    parsed = ast.parse(text)
    if keep_alias == "plain" and new in _all_names(parsed):  # a deprecated name in __all__ would warn on `import *`
        text = _add_to_all(text, parsed, old, new)
    if not text.endswith("\n"):
        text += "\n"
    if keep_alias == "plain":
        text += f"\n{old} = {new}\n"
    else:
        defined = bound_names(list(module_level(parsed.body)))
        if DEPRECATED_TABLE in defined:
            marker = f"{DEPRECATED_TABLE} = {{"
            if marker not in text:
                raise CodemodError(f"{path.name} defines {DEPRECATED_TABLE} in a form turnout does not edit")
            text = text.replace(marker, f'{marker}"{old}": "{new}", ', 1)
        elif "__getattr__" in defined:
            raise CodemodError(f"{path.name} already defines __getattr__; a deprecated alias for {old!r} would "
                               "replace it; keep a plain alias (keep_alias = \"plain\") or add the warning by hand")
        else:
            text += f'\n{DEPRECATED_TABLE} = {{"{old}": "{new}"}}\n' + _GETATTR
    path.write_text(text, encoding="utf-8")


def _add_method_alias(path: Path, owner: str, old: str, new: str, keep_alias: AliasKind) -> None:
    text = path.read_text(encoding="utf-8")
    parsed = ast.parse(text)
    cls = next(s for s in module_level(parsed.body) if isinstance(s, ast.ClassDef) and s.name == owner)
    method = next(s for s in cls.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) and s.name == new)
    indent = " " * method.col_offset
    if keep_alias == "plain":
        block = f"\n{indent}{old} = {new}\n"
    else:
        if method.decorator_list or isinstance(method, ast.AsyncFunctionDef):
            raise CodemodError(f"{owner}.{new} is decorated or async; turnout keeps a deprecated alias only for a "
                               "plain method; keep a plain alias instead")
        body = indent + "    "
        block = (f"\n{indent}def {old}(self, *args, **kwargs):  # deprecated alias of {new}\n"
                 f"{body}import warnings\n\n"
                 f'{body}warnings.warn("{owner}.{old} is deprecated; use {owner}.{new}", DeprecationWarning, '
                 "stacklevel=2)\n"
                 f"{body}return self.{new}(*args, **kwargs)\n")
    lines = text.splitlines(keepends=True)
    end = method.end_lineno or method.lineno
    if not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines.insert(end, block)
    path.write_text("".join(lines), encoding="utf-8")
