"""Keep rope's renames in docs and names-as-strings; put back the ones it made in prose.

With `docs=True` rope renames a word in any string or comment where that word, read as a
name at that spot, means the renamed symbol. That is how docstrings, doctests, `__all__`
and `mock.patch("pkg.mod.name")` targets follow a rename, and also how, measured on the
sample repository, renaming the class `Invoice` to `Bill` turned the rendered heading
`f"Invoice {number}"` into `"Bill ..."` and failed a test: rope cannot tell a name in a
string from a word in a sentence. After rope, every string it changed is judged:

- kept: docstrings (and the doctests in them), strings in annotations, `__all__` entries,
  strings whose whole text is a dotted path, and names passed to getattr/hasattr/setattr/
  delattr, `patch.object` and `cast`;
- put back: any other string (prose); in an f-string only the `{expressions}` keep the
  rename, the literal text is put back.

Comments keep rope's rename: they change no behaviour. Strings put back still mention
the old name, so they come back to the caller as remaining mentions.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Mapping
from pathlib import Path

from turnout.tools._chunking import parse_python
from turnout.tools._codemod_files import char_column

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_NAME_ARGUMENT_CALLS = {"getattr": 1, "hasattr": 1, "setattr": 1, "delattr": 1, "object": 1, "cast": 0}

Span = tuple[tuple[int, int], tuple[int, int]]


def _strings(text: str) -> list[tuple[Span, str]]:
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
            if token.type == tokenize.STRING:
                found.append(((token.start, token.end), token.string))
    except (tokenize.TokenError, SyntaxError):
        return []
    return found


def capture(files: Mapping[str, bytes], rels: list[str]) -> dict[str, list[str]]:
    """The string tokens of each file, in order, before rope runs; `files` holds their bytes
    (the codemod's snapshot, taken just before). Files missing or not UTF-8 are left out."""
    captured = {}
    for rel in rels:
        data = files.get(rel)
        if data is None:
            continue
        try:
            captured[rel] = [s for _, s in _strings(data.decode("utf-8"))]
        except UnicodeDecodeError:
            continue
    return captured


def _kept_positions(tree: ast.Module, lines: list[str]) -> set[tuple[int, int]]:
    """Start positions of string constants whose renames stand (see the module docstring)."""
    kept: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                kept.append(first.value)
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        kept += [n for a in annotations if a is not None for n in ast.walk(a)]
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                kept += list(ast.walk(node.value))
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            index = _NAME_ARGUMENT_CALLS.get(func)
            if index is not None and len(node.args) > index:
                kept.append(node.args[index])
    return {(n.lineno, char_column(lines[n.lineno - 1], n.col_offset)) for n in kept
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _renamed_at(before: str, after: str, old: str, new: str) -> list[int] | None:
    """Offsets in `before` where `old` became `new` in `after`, or None when that is not all
    that changed."""
    offsets: list[int] = []
    pieces: list[str] = []
    last = shift = 0
    for match in re.finditer(rf"(?<!\w){re.escape(old)}(?!\w)", before):
        if after.startswith(new, match.start() + shift):
            offsets.append(match.start())
            pieces += [before[last:match.start()], new]
            last = match.end()
            shift += len(new) - len(old)
    pieces.append(before[last:])
    return offsets if "".join(pieces) == after else None


def _expression_offsets(token: str, old: str) -> set[int]:
    """Offsets in an f-string token of `old` used as a name or attribute inside `{...}`."""
    tree = parse_python(token)
    if tree is None:
        return set()
    lines = io.StringIO(token, newline="").readlines()
    bare = [line.rstrip("\r\n") for line in lines]

    def offset(line: int, byte_column: int) -> int:
        return sum(len(x) for x in lines[: line - 1]) + char_column(bare[line - 1], byte_column)

    found = set()
    for value in ast.walk(tree):
        if not isinstance(value, ast.FormattedValue):
            continue
        for node in ast.walk(value.value):
            if isinstance(node, ast.Name) and node.id == old:
                found.add(offset(node.lineno, node.col_offset))
            elif isinstance(node, ast.Attribute) and node.attr == old and node.end_lineno:
                found.add(offset(node.end_lineno, node.end_col_offset or 0) - len(old))
    return {o for o in found if token.startswith(old, o)}


def _content(token: str) -> str:
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        return ""
    return value if isinstance(value, str) else ""


def _judged(before: str, after: str, old: str, new: str) -> str:
    prefix = re.match(r"[A-Za-z]*", before).group(0).lower()  # type: ignore[union-attr]
    if "f" not in prefix:
        return before
    renamed = _renamed_at(before, after, old, new)
    if renamed is None:
        return after  # more than a rename happened: do not second-guess rope
    keep = sorted(set(renamed) & _expression_offsets(before, old), reverse=True)
    result = before
    for start in keep:
        result = result[:start] + new + result[start + len(old):]
    return result


def put_back_prose(root: Path, before: dict[str, list[str]], old: str, new: str,
                   moved: Callable[[str], str]) -> list[str]:
    """Undo rope's renames inside prose strings; return the files where any was put back.
    `moved` maps a path from before rope to where the file is now (module renames move files)."""
    changed = []
    for rel, originals in before.items():
        path = root / moved(rel)
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        tokens = _strings(text)
        tree = parse_python(text)
        if tree is None or len(tokens) != len(originals):
            continue
        lines = [line.rstrip("\r\n") for line in io.StringIO(text, newline="").readlines()]
        kept = _kept_positions(tree, lines)
        replacements = []
        for (span, now), was in zip(tokens, originals, strict=True):
            if now == was or span[0] in kept or _DOTTED.fullmatch(_content(was)):
                continue
            judged = _judged(was, now, old, new)
            if judged != now:
                replacements.append((span, judged))
        if replacements:
            path.write_bytes(_replace(text, replacements).encode("utf-8"))
            changed.append(moved(rel))
    return changed


def _replace(text: str, replacements: list[tuple[Span, str]]) -> str:
    lines = io.StringIO(text, newline="").readlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    for ((start_line, start_col), (end_line, end_col)), value in sorted(replacements, reverse=True):
        begin, end = starts[start_line - 1] + start_col, starts[end_line - 1] + end_col
        text = text[:begin] + value + text[end:]
    return text
