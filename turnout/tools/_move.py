"""`move_function`: rope moves the code, turnout makes the imports right.

rope's `MoveGlobal` is given only the old and the new module: it carries the function over
with the imports it needs and rewrites the old module's own uses. Measured on rope 1.15,
letting it rewrite the rest of the repository as well collapsed parenthesised import lists
onto one line, turned `name(...)` into `module.name(...)`, and dropped a package
`__init__`'s re-export when nothing in the `__init__` used it. So the other files are
repointed here instead (`from old import name` -> `from new import name`, formatting kept),
except where that would create an import cycle; those keep importing through the old
module, which re-exports the name.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from libcst.helpers import get_full_name_for_node

from turnout.tools import _move_fixups as fixups
from turnout.tools import _rope_ops
from turnout.tools._codemod_files import (
    Snapshot,
    is_package_init,
    mentions,
    module_name,
    python_files,
    resolve_relative,
    word_pattern,
)
from turnout.tools._codemod_run import checked_name, relative, root_dir, to_mentions, transaction
from turnout.tools._codemod_targets import SourceTree, bound_names, find, import_graph, module_level, reaches
from turnout.tools._move_reexport import call_time, fix_old_module
from turnout.tools.codemods import CodemodError, CodemodResult, Mention


def _destination(tree: SourceTree, root: Path, source: str, to_module: str) -> tuple[str, bool]:
    """The file of `to_module` (root-relative) and whether it must be created."""
    existing = tree.path_of(to_module)
    if existing is not None:
        return existing, False
    parent, _, last = to_module.rpartition(".")
    if parent:
        package = tree.path_of(parent)
        if package is None or not is_package_init(package):
            raise CodemodError(f"package {parent!r} does not exist under {root}; create it first or "
                               "move to an existing module")
        folder = Path(package).parent
    else:
        depth = len(tree.modules[source].split(".")) - (0 if is_package_init(source) else 1)
        folder = Path(source).parents[depth]
    return (folder / f"{last}.py").as_posix(), True


def _imports(tree: ast.Module, module: str, is_package: bool, target: str, name: str | None = None) -> bool:
    """Does the module import the module `target` (or, given `name`, import `name` from it)?"""
    parent, _, last = target.rpartition(".")
    for node in ast.walk(tree):
        if name is None and isinstance(node, ast.Import) and any(
                a.name == target or a.name.startswith(target + ".") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom):
            base = resolve_relative(module, is_package, node.module, node.level)
            if name is not None:
                if base == target and any(a.name == name for a in node.names):
                    return True
            elif base == target or (base == parent and any(a.name == last for a in node.names)):
                return True
    return False


def move(root: Path | str, name: str, from_path: str, to_module: str) -> CodemodResult:
    base = root_dir(root)
    name = checked_name(name, what="name", dotted=False)
    to_module = checked_name(to_module, what="to_module", dotted=True)
    source = relative(base, from_path, what="from_path")
    if not source.endswith(".py"):
        raise CodemodError(f"from_path {from_path!r} is not a Python file")
    tree = SourceTree.read(base, python_files(base, stubs=False))
    if source not in tree.trees:
        raise CodemodError(f"{source} does not parse; fix its syntax before moving code out of it")
    found = [d for d in find(tree, name, "auto", source) if d.kind in ("function", "class") and d.qualname == name]
    if not found:
        raise CodemodError(f"no module-level function or class {name!r} in {source}")
    old_module = tree.modules[source]
    if to_module == old_module:
        raise CodemodError(f"{name!r} is already in {to_module}; nothing to move")
    destination, create = _destination(tree, base, source, to_module)
    if destination in tree.trees and name in bound_names(list(module_level(tree.trees[destination].body))):
        raise CodemodError(f"{name!r} is already defined in {to_module} ({destination}); rename one of them first")

    def resolver(rel: str) -> fixups.Resolver:
        module, package = module_name(base, rel), is_package_init(rel)
        return lambda node: resolve_relative(module, package, get_full_name_for_node(node.module)
                                             if node.module else None, len(node.relative))

    def absolute(rel: str) -> Callable[[ast.ImportFrom], str]:
        module, package = module_name(base, rel), is_package_init(rel)
        return lambda node: resolve_relative(module, package, node.module, node.level)

    def rewrite(rel: str, edit: Callable[[str], str]) -> None:
        path = base / rel
        text = path.read_text(encoding="utf-8")
        if (fixed := edit(text)) != text:
            path.write_text(fixed, encoding="utf-8")

    def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
        notes = [f"moved {name!r} from {old_module} ({source}) to {to_module} ({destination})"]
        if create:
            (base / destination).write_text("", encoding="utf-8")
            notes.append(f"created {destination}")
        originals = {rel: data.decode("utf-8", errors="replace") for rel, data in snapshot.files.items()}
        _rope_ops.move_global(base, source, (found[0].line, found[0].column or 0, name), destination)
        rewrite(destination, lambda text: fixups.fix_destination(
            text, originals.get(destination, ""), resolver(destination), name=name, destination=to_module,
            old_module=old_module))
        cyclic = _imports(ast.parse((base / destination).read_text(encoding="utf-8")), to_module,
                          is_package_init(destination), old_module)
        rewrite(source, lambda text: fix_old_module(
            fixups.restore_lost_imports(text, originals[source], absolute(source), name=name,
                                        old_module=old_module, destination=to_module),
            resolver(source), name=name, destination=to_module, cyclic=cyclic,
            had_all=name in fixups.all_entries(originals[source]),
            had_import=_imports(ast.parse(originals[source]), old_module, is_package_init(source), to_module)))
        notes.append(f"{old_module} re-exports {name!r} so existing imports keep working")
        if cyclic:
            notes.append(f"{to_module} imports from {old_module}: {source} imports it last and re-exports "
                         f"{name!r} through a module __getattr__, so both import in either order; consider "
                         "moving what the function uses too")
        notes += _repoint_importers(base, rewrite, resolver, name=name, old_module=old_module,
                                    to_module=to_module, skip={source, destination})
        left = mentions(base, word_pattern(f"{old_module}.{name}"))
        if left:
            notes.append(f"{len(left)} mention(s) of {old_module}.{name} remain; patching that path "
                         "(mock.patch) no longer affects callers of the moved function")
        return to_mentions(left), notes

    return transaction(base, "move_function", body)


def _repoint_importers(base: Path, rewrite: Callable[[str, Callable[[str], str]], None],
                       resolver: Callable[[str], fixups.Resolver], *, name: str, old_module: str, to_module: str,
                       skip: set[str]) -> list[str]:
    after = SourceTree.read(base, python_files(base, stubs=False))
    graph = import_graph(after)
    repointed, kept = [], []
    for rel in sorted(after.trees):
        if rel in skip or not _imports(after.trees[rel], after.modules[rel], is_package_init(rel), old_module, name):
            continue
        if reaches(graph, to_module, after.modules[rel]):
            rewrite(rel, lambda text, rel=rel: call_time(text, resolver(rel), old_module=old_module, name=name,
                                                destination=to_module))
            kept.append(rel)
            continue
        rewrite(rel, lambda text, rel=rel: fixups.tidy(fixups.repoint(
            text, resolver(rel), old_module=old_module, name=name, destination=to_module), resolver(rel), name=name))
        repointed.append(rel)
    notes = []
    if repointed:
        notes.append(f"{', '.join(repointed)} now import {name!r} from {to_module}")
    if kept:
        notes.append(f"{', '.join(kept)} now import {to_module} and call {to_module}.{name} (it imports them, "
                     "so importing the name itself would fail in an import cycle)")
    return notes
