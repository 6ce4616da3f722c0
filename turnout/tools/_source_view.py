"""One Python file as the rename sweep sees it: its syntax tree, and the tokens an edit may touch.

An edit names a position and the exact text it replaces; `apply` makes it only when that
position starts a NAME token spelled that way (or, for `__all__` entries, a STRING token),
so an edit computed from the syntax tree can never land inside a string, a comment or a
longer identifier. ast columns are UTF-8 byte offsets and tokenize's are characters;
`View.column` converts.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from turnout.tools._chunking import parse_python
from turnout.tools._codemod_files import char_column, is_package_init, resolve_relative
from turnout.tools._codemod_targets import module_level

DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Edit:
    """Replace `old` at (line, character column) by `new`; `string` edits land on a STRING token."""

    line: int
    column: int
    old: str
    new: str
    string: bool = False


@dataclass
class View:
    """One parsed file, with the identifier and string tokens an edit may land on."""

    rel: str
    text: str
    lines: list[str]
    tree: ast.Module
    module: str
    names: dict[tuple[int, int], str]
    strings: dict[tuple[int, int], str]
    imports: dict[str, str] = field(default_factory=dict)

    @property
    def is_stub(self) -> bool:
        return self.rel.endswith(".pyi")

    def column(self, line: int, byte_column: int) -> int:
        return char_column(self.lines[line - 1], byte_column)


def read_view(root: Path, rel: str, module: str) -> View | None:
    """The file at `rel`, or None when it cannot be read as UTF-8, parsed or tokenized."""
    try:
        text = (root / rel).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    tree = parse_python(text)
    if tree is None:
        return None
    lines = io.StringIO(text, newline="").readlines()
    names: dict[tuple[int, int], str] = {}
    strings: dict[tuple[int, int], str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
            if token.type == tokenize.NAME:
                names[token.start] = token.string
            elif token.type == tokenize.STRING:
                strings[token.start] = token.string
    except (tokenize.TokenError, SyntaxError):
        return None
    view = View(rel, text, lines, tree, module, names, strings)
    view.imports = imports(view)
    return view


def imports(view: View) -> dict[str, str]:
    """Local name -> the dotted thing it was imported as (`c` -> `shop.core`, `shop` -> `shop`)."""
    found: dict[str, str] = {}
    for node in ast.walk(view.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                found[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(view.module, is_package_init(view.rel), node.module, node.level)
            for alias in node.names:
                found[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return found


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def name_edit(view: View, node: ast.Name, new: str) -> Edit:
    return Edit(node.lineno, view.column(node.lineno, node.col_offset), node.id, new)


def attr_edit(view: View, node: ast.Attribute, new: str) -> Edit:
    line = node.end_lineno or node.lineno
    end = view.column(line, node.end_col_offset or 0)
    return Edit(line, end - len(node.attr), node.attr, new)


def tokens_in(view: View, node: ast.AST, word: str) -> list[tuple[int, int]]:
    """Start positions of NAME tokens spelled `word` inside `node`'s source span."""
    start = (node.lineno, view.column(node.lineno, node.col_offset))  # type: ignore[attr-defined]
    end_line = node.end_lineno or node.lineno  # type: ignore[attr-defined]
    end = (end_line, view.column(end_line, node.end_col_offset or 0))  # type: ignore[attr-defined]
    return sorted(p for p, spelled in view.names.items() if start <= p < end and spelled == word)


def alias_edits(view: View, alias: ast.alias, old: str, new: str) -> list[Edit]:
    """Rename `old` in `from m import old` / `old as old` (both halves of the explicit re-export)."""
    positions = tokens_in(view, alias, old)
    if alias.asname not in (None, old):
        positions = positions[:1]
    return [Edit(line, column, old, new) for line, column in positions]


def def_edits(view: View, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, new: str) -> list[Edit]:
    header = [p for p in tokens_in(view, node, node.name) if p[0] >= node.lineno]
    return [Edit(*header[0], node.name, new)] if header else []


def all_entries(tree: ast.Module) -> Iterator[ast.Constant]:
    for stmt in module_level(tree.body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else (
            [stmt.target] if isinstance(stmt, ast.AugAssign | ast.AnnAssign) else [])
        named = any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
        value = getattr(stmt, "value", None) if named else None
        if isinstance(value, ast.List | ast.Tuple):
            yield from (e for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))


def all_edits(view: View, old: str, new: str) -> list[Edit]:
    edits = []
    for entry in all_entries(view.tree):
        if entry.value != old:
            continue
        position = (entry.lineno, view.column(entry.lineno, entry.col_offset))
        token = view.strings.get(position)
        if token is not None and token.endswith(old + token[-1]):
            quote = token[-1]
            edits.append(Edit(*position, token, token[: -len(old) - 1] + new + quote, string=True))
    return edits


def other_bindings(view: View, old: str, skip: set[int]) -> bool:
    """Does anything in the file bind `old` other than the nodes in `skip` (by id)?"""
    for node in ast.walk(view.tree):
        if id(node) in skip:
            continue
        if isinstance(node, DEFS) and node.name == old:
            return True
        if isinstance(node, ast.arg) and node.arg == old:
            return True
        if isinstance(node, ast.Name) and node.id == old and not isinstance(node.ctx, ast.Load):
            return True
        if isinstance(node, ast.ExceptHandler) and node.name == old:
            return True
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
                (a.asname or a.name.split(".")[0]) == old for a in node.names):
            return True
    return False


def apply(view: View, edits: list[Edit]) -> str | None:
    """The file's text with every edit that lands on its token made, or None when none does."""
    lines = list(view.lines)
    done: set[tuple[int, int]] = set()
    for edit in sorted(edits, key=lambda e: (e.line, -e.column)):
        position = (edit.line, edit.column)
        if position in done:
            continue
        line = lines[edit.line - 1]
        token = view.strings.get(position) if edit.string else view.names.get(position)
        if token != edit.old or not line.startswith(edit.old, edit.column):
            continue
        lines[edit.line - 1] = line[: edit.column] + edit.new + line[edit.column + len(edit.old):]
        done.add(position)
    return "".join(lines) if done else None
