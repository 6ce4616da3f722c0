"""`rename_symbol`: choose the definition, let rope rename it, then clean up after rope.

The order matters: rope renames with `docs=True` (docstrings, doctests, `__all__`,
`mock.patch` targets follow); prose strings it renamed are put back (`_rope_strings`);
a module's `.pyi` stub is renamed beside it; the sweep fixes what rope cannot see
(`_rename_sweep`); whatever still mentions the old name is reported, not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from turnout.tools import _rope_ops, _rope_strings
from turnout.tools._codemod_files import (
    Snapshot,
    TextMention,
    is_package_init,
    mentions,
    module_name,
    python_files,
    word_pattern,
)
from turnout.tools._codemod_run import checked_name, relative, root_dir, to_mentions, transaction
from turnout.tools._codemod_targets import Definition, SourceTree, bound_names, class_body_names, find, module_level
from turnout.tools._rename_sweep import RenameTarget, sweep
from turnout.tools.codemods import CodemodError, CodemodResult, Mention, RenameKind

_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_KINDS = ("auto", "function", "class", "method", "module")


def _choose(tree: SourceTree, root: Path, old: str, kind: RenameKind, path: str | None) -> Definition:
    found = find(tree, old, kind, path)
    if not found:
        where = f"{path} under {root}" if path else str(root)
        raise CodemodError(f"no definition of {old!r} in {where}; pick a symbol the code index lists "
                           "(CodeIndex.symbols()) or a module's dotted path")
    if len(found) > 1:
        listed = "; ".join(d.describe() for d in found)
        raise CodemodError(f"{old!r} is ambiguous: {listed}; pass path= (or kind=) to choose one")
    return found[0]


def _bare_new(definition: Definition, new: str) -> str:
    """`new` without a qualifier, which may only repeat where the definition already is."""
    if "." not in new:
        return new
    prefix, _, last = new.rpartition(".")
    allowed = {definition.module.rpartition(".")[0]} if definition.kind == "module" else {
        definition.qualname.rpartition(".")[0], definition.full_name.rpartition(".")[0]}
    if prefix not in allowed - {""}:
        raise CodemodError(f"renaming {definition.full_name} to {new!r} would also move it; rename keeps it "
                           "where it is (give the new name only), and move_function moves it")
    return last


def _check_free(tree: SourceTree, root: Path, definition: Definition, new: str) -> None:
    taken_in = None
    if definition.kind == "module":
        here = (root / definition.path).parent
        folder = here.parent if is_package_init(definition.path) else here
        if (folder / f"{new}.py").exists() or (folder / new).is_dir():
            taken_in = f"{folder.relative_to(root).as_posix() or '.'} (a module or package of that name exists)"
    elif definition.kind == "method":
        owner = definition.qualname.split(".")[0]
        if new in class_body_names(tree.trees[definition.path], owner):
            taken_in = f"class {owner} ({definition.path})"
    elif new in bound_names(list(module_level(tree.trees[definition.path].body))):
        taken_in = f"{definition.module} ({definition.path})"
    if taken_in:
        raise CodemodError(f"{new!r} is already defined in {taken_in}; choose another name")


def _moved_path(definition: Definition, new: str) -> Callable[[str], str]:
    """Where a file is after renaming `definition` (only a module rename moves files)."""
    if definition.kind != "module":
        return lambda rel: rel
    if is_package_init(definition.path):
        folder = definition.path.rsplit("/", 1)[0]
        renamed = f"{folder.rpartition('/')[0]}/{new}".lstrip("/")
        return lambda rel: renamed + rel[len(folder):] if rel.startswith(folder + "/") else rel
    renamed_file = f"{definition.path.rpartition('/')[0]}/{new}.py".lstrip("/")
    return lambda rel: renamed_file if rel == definition.path else rel


def _left(root: Path, definition: Definition) -> list[TextMention]:
    if definition.kind != "module":
        return mentions(root, word_pattern(definition.name))
    dotted_or_path = re.escape(definition.module).replace(r"\.", r"[./]")
    return mentions(root, re.compile(rf"(?<![\w./]){dotted_or_path}(?!\w)"))


def rename(root: Path | str, old: str, new: str, *, path: str | None, kind: RenameKind) -> CodemodResult:
    base = root_dir(root)
    if kind not in _KINDS:
        raise CodemodError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    old = old.strip().replace(":", ".")  # `module:attr`, as CodeIndex accepts it
    if not _SYMBOL.fullmatch(old):
        raise CodemodError(f"{old!r} is not a symbol name; pass e.g. 'load', 'Invoice.add_line' or 'pkg.module'")
    new = checked_name(new, what="new name", dotted=True)
    chosen_path = relative(base, path, what="path") if path else None
    tree = SourceTree.read(base, python_files(base, stubs=False))
    definition = _choose(tree, base, old, kind, chosen_path)
    bare = _bare_new(definition, new)
    if bare == definition.name:
        raise CodemodError(f"{definition.full_name} is already called {bare!r}; nothing to rename")
    _check_free(tree, base, definition, bare)
    moved = _moved_path(definition, bare)

    def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
        notes: list[str] = []
        resource, position = definition.path, None
        if definition.kind != "module":
            position = (definition.line, definition.column or 0, definition.name)
        elif is_package_init(definition.path):
            resource = definition.path.rsplit("/", 1)[0] if "/" in definition.path else "."
            snapshot.record_move(resource, moved(definition.path).rsplit("/", 1)[0])
        before = _rope_strings.capture(snapshot.files, sorted(tree.trees))
        _rope_ops.rename(base, resource, position, bare, in_hierarchy=definition.kind == "method",
                         parseable=set(tree.trees))
        if prose := _rope_strings.put_back_prose(base, before, definition.name, bare, moved):
            notes.append(f"kept prose strings as they were in {', '.join(prose)} (rope's docs mode "
                         "renamed words in them; they are listed in remaining)")
        new_module = definition.module
        if definition.kind == "module":
            new_module = ".".join([*definition.module.split(".")[:-1], bare])
            stub = base / (definition.path[:-3] + ".pyi")
            if not is_package_init(definition.path) and stub.is_file():
                stub.rename(stub.with_name(f"{bare}.pyi"))
                notes.append(f"renamed the stub {stub.relative_to(base).as_posix()} too (rope ignores .pyi files)")
        owner = definition.qualname.split(".")[0] if definition.kind == "method" else None
        target = RenameTarget(definition.kind, definition.name, bare, definition.module, new_module, owner)
        if swept := sweep(base, {rel: module_name(base, rel) for rel in python_files(base)}, target):
            notes.append(f"fixed what rope left in {', '.join(swept)}")
        if tree.unparsable:
            notes.append(f"skipped files that do not parse: {', '.join(tree.unparsable)}")
        left = _left(base, definition)
        if left:
            notes.append(f"{len(left)} mention(s) of {definition.name!r} left for review (see remaining)")
        return to_mentions(left), [f"renamed {definition.describe()} to {bare!r}", *notes]

    return transaction(base, "rename_symbol", body)
