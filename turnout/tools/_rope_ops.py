"""The rope calls the codemods make (rename, move, extract, inline, change signature), and nothing else of rope.

rope is imported here and only here, lazily: it is a heavy import and only `turnout
refactor` needs it. The project is opened with `ropefolder=None` (no `.ropeproject` left
behind), plain file-system commands (no `git mv` staging changes in the user's index) and
turnout's own skip list (no renames inside virtualenvs or build output). Files that do not
parse are left out of the resources rope reads, so one broken file elsewhere does not stop
a rename; rope's errors become `CodemodError`s naming what rope said.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout.errors import UserError
from turnout.tools._walk import SKIP_DIRS

if TYPE_CHECKING:
    from rope.base.project import Project

_ROPE_IGNORED = ["*.pyc", "*~", "*.egg-info", *sorted(SKIP_DIRS)]


class RopeFailed(UserError):
    """rope refused or failed; the caller turns this into its own error after restoring files."""


@contextmanager
def _project(root: Path, *, import_style: str | None = None) -> Iterator[Project]:
    from rope.base.fscommands import FileSystemCommands
    from rope.base.project import Project

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # rope's own, about its own internals
        project = Project(str(root), fscommands=FileSystemCommands(), ropefolder=None,
                          ignored_resources=_ROPE_IGNORED)
    if import_style is not None:
        project.prefs.imports.preferred_import_style = import_style
    try:
        yield project
    finally:
        project.close()


def _offset(source: str, line: int, column: int) -> int:
    lines = source.splitlines(keepends=True)
    return sum(len(text) for text in lines[: line - 1]) + column


def _resources(project: Project, parseable: set[str]) -> list[Any]:
    return [r for r in project.get_python_files() if r.path in parseable]


def _name_offset(resource: Any, line: int, column: int, name: str) -> int:
    """The offset of `name` at line/column in rope's own reading of the file (it may differ from
    a plain read in line endings), checked to spell `name`."""
    source = resource.read()
    offset = _offset(source, line, column)
    if source[offset:offset + len(name)] != name:
        found = re.search(rf"\b{re.escape(name)}\b", source[_offset(source, line, 0):])
        if found is None:
            raise RopeFailed(f"cannot find {name!r} on line {line} of {resource.path}")
        offset = _offset(source, line, 0) + found.start()
    return offset


def rename(root: Path, path: str, position: tuple[int, int, str] | None, new: str, *,
           in_hierarchy: bool, parseable: set[str]) -> None:
    """Rename the definition at `position` (line, column, name) in `path` — or, with no
    position, the module or package at `path` — to `new`, updating every reference rope finds
    (imports, `__all__`, doctests and other mentions in strings and comments: `docs=True`)."""
    from rope.base.exceptions import RopeError
    from rope.refactor.rename import Rename

    with _project(root) as project:
        try:
            resource = project.get_resource(path)
            offset = _name_offset(resource, *position) if position else None
            changes = Rename(project, resource, offset).get_changes(
                new, docs=True, in_hierarchy=in_hierarchy, resources=_resources(project, parseable))
            project.do(changes)
        except RopeError as exc:
            raise RopeFailed(f"rope could not rename in {path}: {exc}") from exc


def move_global(root: Path, path: str, position: tuple[int, int, str], destination: str) -> None:
    """Move the module-level function or class at `position` in `path` into the module file
    `destination`, with the imports it needs. Only those two files are handed to rope (the
    rest of the repository is repointed by the caller), and rope leaves imports where they
    are instead of pulling them all to the top (an import placed last is placed last on
    purpose: it breaks an import cycle)."""
    from rope.base.exceptions import RopeError
    from rope.refactor.move import MoveGlobal, create_move

    with _project(root, import_style="from-global") as project:
        project.prefs.pull_imports_to_top = False
        try:
            resource = project.get_resource(path)
            mover = create_move(project, resource, _name_offset(resource, *position))
            if not isinstance(mover, MoveGlobal):
                raise RopeFailed(f"{position[2]!r} in {path} is not a module-level function or class")
            target = project.get_resource(destination)
            project.do(mover.get_changes(target, resources=[resource, target]))
        except RopeError as exc:
            raise RopeFailed(f"rope could not move {position[2]!r} out of {path}: {exc}") from exc


def _line_offsets(source: str, start_line: int, end_line: int) -> tuple[int, int]:
    """Offsets of the first non-blank character of `start_line` and the end of `end_line`."""
    lines = source.splitlines(keepends=True)
    if not 1 <= start_line <= end_line <= len(lines):
        raise RopeFailed(f"lines {start_line}-{end_line} are not in the file (it has {len(lines)})")
    start = _offset(source, start_line, len(lines[start_line - 1]) - len(lines[start_line - 1].lstrip()))
    end = _offset(source, end_line, len(lines[end_line - 1].rstrip("\r\n")))
    return start, end


def extract(root: Path, path: str, start_line: int, end_line: int, new_name: str) -> None:
    """Extract the statements on lines `start_line`..`end_line` of `path` into a new function
    (a method, inside a method) called `new_name`, called where they were."""
    from rope.base.exceptions import RopeError
    from rope.refactor.extract import ExtractMethod

    with _project(root) as project:
        try:
            resource = project.get_resource(path)
            start, end = _line_offsets(resource.read(), start_line, end_line)
            project.do(ExtractMethod(project, resource, start, end).get_changes(new_name, similar=False))
        except RopeError as exc:
            raise RopeFailed(f"rope could not extract lines {start_line}-{end_line} of {path}: {exc}") from exc


def inline(root: Path, path: str, position: tuple[int, int, str], *, parseable: set[str]) -> None:
    """Inline the function or variable at `position` in `path` into every use, and remove it."""
    from rope.base.exceptions import RopeError
    from rope.refactor.inline import create_inline

    with _project(root) as project:
        try:
            resource = project.get_resource(path)
            inliner = create_inline(project, resource, _name_offset(resource, *position))
            project.do(inliner.get_changes(remove=True, only_current=False,
                                           resources=_resources(project, parseable)))
        except RopeError as exc:
            raise RopeFailed(f"rope could not inline {position[2]!r} from {path}: {exc}") from exc


def change_signature(root: Path, path: str, position: tuple[int, int, str], changes: list[tuple[str, Any]], *,
                     parseable: set[str]) -> None:
    """Change the parameters of the function at `position`, and every call rope resolves.
    `changes`, applied in order: ("add", (index, name, default)), ("remove", index),
    ("reorder", new order of indices)."""
    from rope.base.exceptions import RopeError
    from rope.refactor.change_signature import (
        ArgumentAdder,
        ArgumentRemover,
        ArgumentReorderer,
        ChangeSignature,
    )

    changers: list[Any] = []
    for kind, value in changes:
        if kind == "add":
            index, name, default = value
            changers.append(ArgumentAdder(index, name, default=default))
        elif kind == "remove":
            changers.append(ArgumentRemover(value))
        else:
            changers.append(ArgumentReorderer(value))
    with _project(root) as project:
        try:
            resource = project.get_resource(path)
            changer = ChangeSignature(project, resource, _name_offset(resource, *position))
            project.do(changer.get_changes(changers, resources=_resources(project, parseable)))
        except RopeError as exc:
            raise RopeFailed(f"rope could not change the signature of {position[2]!r} in {path}: {exc}") from exc
