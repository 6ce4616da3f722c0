"""Typed edits: what a coder's output is turned into before it touches a file.

Three forms, from the one small local models produce best to the most general:

    replace_definition(root, "billing/invoice.py", "Invoice.total", new_code)  # ast finds the lines
    apply_search_replace(root, [SearchReplace(path=..., search=..., replace=...)])
    apply_unified_diff(root, diff_text)

Each edit is checked before it is kept: the path stays inside `root`, an anchor matches
exactly one place (never a guess), and a Python file still parses. A rejected edit leaves
the files as they were and raises `EditError`, whose message is written to be handed back
to the model as a repair prompt: which file, which lines, and what to send instead.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from turnout.errors import ModelBehaviorError
from turnout.telemetry._spans import traced_tool

_PYTHON = frozenset({".py", ".pyi"})
_DIFF_PATH = re.compile(r"^(?:---|\+\+\+) (?:\"(.+)\"|(\S+))")
_DIFF_META = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$")


class EditError(ModelBehaviorError):
    """An edit that cannot be applied as given; the message says what to send instead."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SearchReplace(BaseModel):
    """Replace the one place in `path` that reads `search` with `replace` (an empty search creates the file)."""

    path: str
    search: str
    replace: str


class EditReport(BaseModel):
    """Root-relative posix paths whose contents an edit changed, sorted."""

    changed: list[str]


def _inside(root: Path, rel: str) -> Path:
    """`root / rel`, or an `EditError` when `rel` is absolute, climbs with `..`, or leads out by a symlink."""
    pure = Path(rel)
    if not rel or pure.is_absolute() or rel.startswith(("/", "\\")) or ".." in pure.parts or ".git" in pure.parts:
        raise EditError(f"{rel!r} is not a path inside the repository; give a relative path such as "
                        "'pkg/module.py', without '..' or a leading '/'", path=rel)
    target = root / pure
    if not target.resolve().is_relative_to(root.resolve()):
        raise EditError(f"{rel!r} leads outside the repository through a symlink; edit the file it points to "
                        "inside the repository instead", path=rel)
    return target


def _read(root: Path, rel: str) -> str:
    target = _inside(root, rel)
    if not target.is_file():
        raise EditError(f"{rel}: no such file; use a path from the repository, or an empty search to create it",
                        path=rel)
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise EditError(f"{rel}: not UTF-8 text, so it cannot be edited as text", path=rel) from None


def _check_python(rel: str, source: str | bytes) -> None:
    if Path(rel).suffix not in _PYTHON:
        return
    try:
        ast.parse(source, filename=rel, feature_version=sys.version_info[:2])
    except SyntaxError as exc:
        raise EditError(f"{rel}: the edit breaks the syntax at line {exc.lineno}: {exc.msg}; the file was left "
                        "as it was, send the edit again as valid Python", path=rel) from None
    except ValueError as exc:  # null bytes
        raise EditError(f"{rel}: the edit makes the file unparsable ({exc}); the file was left as it was",
                        path=rel) from None


def _write(target: Path, text: str) -> None:
    """Replace `target` by rename, so a crash leaves the old file or the new one, never half of each."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".edit")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _commit(root: Path, contents: dict[str, tuple[str | None, str]]) -> EditReport:
    """Check every Python file, then write every changed one; nothing is written if any check fails."""
    changed = {rel: new for rel, (old, new) in contents.items() if new != old}
    for rel, new in changed.items():
        _check_python(rel, new)
    written: list[str] = []
    try:
        for rel, new in changed.items():
            _write(_inside(root, rel), new)
            written.append(rel)
    except OSError:
        for rel in written:  # put back what this call already wrote
            old = contents[rel][0]
            if old is None:
                (root / rel).unlink()
            else:
                _write(root / rel, old)
        raise
    return EditReport(changed=sorted(changed))


# -- search / replace -------------------------------------------------------------------


def _first_line(block: str) -> str:
    line = next((line.strip() for line in block.splitlines() if line.strip()), "")
    return line if len(line) <= 80 else line[:77] + "..."


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shape(lines: Sequence[str]) -> list[tuple[int, str]]:
    """Lines as (indent relative to the block, content), trailing whitespace and tab/space choice ignored."""
    clean = [line.rstrip().expandtabs(4) for line in lines]
    base = min((len(line) - len(line.lstrip()) for line in clean if line), default=0)
    return [(len(line) - len(line.lstrip()) - base, line.strip()) if line else (0, "") for line in clean]


def _trim_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _reindent(code: str, indent: str, newline: str) -> list[str]:
    """`code` dedented, each non-blank line prefixed by `indent`, each ending in `newline`."""
    lines = _trim_blank(textwrap.dedent(code).splitlines())
    return [(indent + line if line.strip() else "") + newline for line in lines]


def _tolerant(text: str, edit: SearchReplace) -> str:
    lines = text.splitlines(keepends=True)
    wanted = _shape(_trim_blank(edit.search.splitlines()))
    size = len(wanted)
    starts = [i for i in range(len(lines) - size + 1) if _shape(lines[i:i + size]) == wanted] if size else []
    if len(starts) != 1:
        quoted = _first_line(edit.search)
        if not starts:
            raise EditError(f"{edit.path}: the search block starting {quoted!r} was not found; copy the exact lines "
                            "from the file (read it again if it may have changed)", path=edit.path)
        raise EditError(f"{edit.path}: the search block starting {quoted!r} matches {len(starts)} places; include "
                        "more surrounding lines so that it matches exactly one", path=edit.path)
    window = lines[starts[0]:starts[0] + size]
    indent = min((_indent(line) for line in window if line.strip()), key=len, default="")
    newline = "\r\n" if window[0].endswith("\r\n") else "\n"
    new = _reindent(edit.replace, indent, newline)
    if new and not window[-1].endswith("\n"):  # the match ended the file without a newline: keep it so
        new[-1] = new[-1].rstrip("\r\n")
    return "".join(lines[:starts[0]] + new + lines[starts[0] + size:])


def _search_replace(text: str, edit: SearchReplace) -> str:
    count = text.count(edit.search)
    if count == 1:
        return text.replace(edit.search, edit.replace)
    if count > 1:
        raise EditError(f"{edit.path}: the search block starting {_first_line(edit.search)!r} matches {count} "
                        "places; include more surrounding lines so that it matches exactly one", path=edit.path)
    return _tolerant(text, edit)


@traced_tool("apply_search_replace")
def apply_search_replace(root: Path, edits: Sequence[SearchReplace]) -> EditReport:
    """Apply the edits in order (several may touch one file), all or none.

    An exact match is used when there is exactly one; otherwise lines are compared with
    trailing whitespace and indentation normalised, and the replacement is re-indented to
    the lines it replaces. An anchor that matches no place or several is an `EditError`.
    """
    root = Path(root)
    contents: dict[str, tuple[str | None, str]] = {}
    for edit in edits:
        rel = Path(edit.path).as_posix()
        if rel in contents:
            old, text = contents[rel]
        elif not edit.search.strip() and not _inside(root, rel).exists():
            contents[rel] = (None, edit.replace)
            continue
        else:
            old = text = _read(root, rel)
        if not edit.search.strip():
            raise EditError(f"{rel}: the search block is empty but the file exists; quote the lines to replace",
                            path=rel)
        contents[rel] = (old, _search_replace(text, edit.model_copy(update={"path": rel})))
    return _commit(root, contents)


# -- unified diff -----------------------------------------------------------------------


def _diff_paths(diff_text: str) -> list[str]:
    paths: list[str] = []
    for line in diff_text.splitlines():
        found = _DIFF_PATH.match(line) or _DIFF_META.match(line)
        if not found:
            continue
        name = next(group for group in found.groups() if group)
        if name == "/dev/null":
            continue
        if line.startswith(("---", "+++")):
            name = name.split("/", 1)[1] if name.startswith(("a/", "b/")) else name
        paths.append(name)
    return list(dict.fromkeys(paths))


def _restore_blank_context(diff_text: str) -> str:
    """Empty lines inside a hunk as ' ' (an empty context line), the space models and editors often drop."""
    lines = diff_text.split("\n")
    in_hunk = False
    for i, line in enumerate(lines):
        if line.startswith("@@"):
            in_hunk = True
        elif line.startswith(("diff ", "--- ", "+++ ")) or (line and line[0] not in " +-\\"):
            in_hunk = False
        elif in_hunk and not line:
            following = next((rest for rest in lines[i + 1:] if rest), "")
            in_hunk = following[:1] in (" ", "+", "-", "\\") and not following.startswith(("--- ", "+++ "))
            lines[i] = " " if in_hunk else line
    return "\n".join(lines)


def _git_apply(root: Path, diff_text: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.resolve().parent)  # a root without .git is not a repository
    from turnout.tools.workspace import GIT_SAFE

    return subprocess.run(["git", *GIT_SAFE, "apply", "--recount", "--whitespace=nowarn", "-"], cwd=root, env=env,
                          input=diff_text, capture_output=True, text=True, check=False)


@traced_tool("apply_unified_diff")
def apply_unified_diff(root: Path, diff_text: str) -> EditReport:
    """Apply a unified diff (paths `a/…`/`b/…` as git writes them) with `git apply`, all or nothing."""
    root = Path(root)
    paths = _diff_paths(diff_text)
    if not paths:
        raise EditError("the diff names no files; start each file with '--- a/path' and '+++ b/path' lines, "
                        "followed by '@@' hunks")
    before = {rel: (_inside(root, rel).read_bytes() if _inside(root, rel).is_file() else None) for rel in paths}
    diff_text = _restore_blank_context(diff_text if diff_text.endswith("\n") else diff_text + "\n")
    applied = _git_apply(root, diff_text)  # all hunks or none: git apply checks them all before writing
    if applied.returncode != 0:
        problems = "; ".join(line.removeprefix("error: ") for line in applied.stderr.splitlines() if line.strip())
        raise EditError(f"the diff does not apply: {problems}; rebuild the hunks from the file's current lines "
                        "(read it again), with unchanged context lines copied exactly")
    try:
        for rel in paths:
            target = root / rel
            if target.is_file():
                _check_python(rel, target.read_bytes())
    except EditError:
        for rel, data in before.items():
            target = root / rel
            if data is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(data)
        raise
    return EditReport(changed=sorted(rel for rel, data in before.items()
                                     if data != ((root / rel).read_bytes() if (root / rel).is_file() else None)))


# -- whole definitions -------------------------------------------------------------------


def _definition(tree: ast.Module, rel: str, symbol: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    parts = symbol.split(".")
    for depth, name in enumerate(parts):
        kinds = (ast.ClassDef,) if depth < len(parts) - 1 else (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        defined = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        matches = [n for n in defined if isinstance(n, kinds) and n.name == name]
        where = "at the top level" if depth == 0 else f"in class {'.'.join(parts[:depth])}"
        if not matches:
            names = ", ".join(n.name for n in defined) or "nothing"
            raise EditError(f"{rel}: no {'class' if depth < len(parts) - 1 else 'function or class'} named {name!r} "
                            f"{where}; defined there: {names}", path=rel)
        if len(matches) > 1:
            raise EditError(f"{rel}: {name!r} is defined {len(matches)} times {where}; replace the one you mean "
                            "with a search/replace edit instead", path=rel)
        node = matches[0]
        body = node.body
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    return node


@traced_tool("replace_definition")
def replace_definition(root: Path, path: str, symbol: str, new_code: str) -> EditReport:
    """Replace the function, class or `Class.method` named `symbol` in `path` with `new_code`.

    The replaced lines run from the comment block just above the definition (and its
    decorators) to its last line; `new_code` is re-indented to the definition's indentation.
    """
    root = Path(root)
    rel = Path(path).as_posix()
    text = _read(root, rel)
    if not new_code.strip():
        raise EditError(f"{rel}: the new code for {symbol!r} is empty; send the whole definition", path=rel)
    try:
        tree = ast.parse(text, filename=rel, feature_version=sys.version_info[:2])
    except SyntaxError as exc:
        raise EditError(f"{rel}: the file does not parse (line {exc.lineno}: {exc.msg}), so {symbol!r} cannot be "
                        "located; use a search/replace edit", path=rel) from None
    node = _definition(tree, rel, symbol)
    lines = text.splitlines(keepends=True)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    indent = _indent(lines[node.lineno - 1])
    while start > 0 and lines[start - 1].strip().startswith("#") and _indent(lines[start - 1]) == indent:
        start -= 1
    end = node.end_lineno or node.lineno
    newline = "\r\n" if lines[node.lineno - 1].endswith("\r\n") else "\n"
    new = _reindent(new_code, indent, newline)
    if not lines[end - 1].endswith("\n"):
        new[-1] = new[-1].rstrip("\r\n")
    return _commit(root, {rel: (text, "".join(lines[:start] + new + lines[end:]))})
