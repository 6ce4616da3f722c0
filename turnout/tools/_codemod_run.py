"""What every codemod does around its edit: check its arguments, and make it all-or-nothing."""

from __future__ import annotations

import keyword
from collections.abc import Callable
from pathlib import Path

from turnout.tools._codemod_files import Snapshot, TextMention, syntax_problem
from turnout.tools._rope_ops import RopeFailed
from turnout.tools.codemods import CodemodError, CodemodName, CodemodResult, Mention

Body = Callable[[Snapshot], tuple[list[Mention], list[str]]]


def root_dir(root: Path | str) -> Path:
    given = Path(root).expanduser()
    if not given.is_dir():
        raise CodemodError(f"codemod root {str(given)!r} is not a directory; pass the repository's directory")
    return given.resolve()


def relative(root: Path, path: str, *, what: str) -> str:
    """`path` (absolute, or relative to `root`) as a root-relative posix path; it must exist."""
    candidate = Path(path).expanduser()
    full = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not full.is_relative_to(root) or not full.exists():
        raise CodemodError(f"{what} {path!r} is not a file or directory under {root}")
    return full.relative_to(root).as_posix() or "."


def checked_name(value: str, *, what: str, dotted: bool) -> str:
    """A valid identifier (or dotted path of them) that uses no keyword, else CodemodError."""
    value = value.strip()
    parts = value.split(".")
    if not all(p.isidentifier() for p in parts) or (len(parts) > 1 and not dotted):
        raise CodemodError(f"{what} {value!r} is not a valid Python identifier" + (" or dotted path" if dotted else ""))
    if bad := [p for p in parts if keyword.iskeyword(p)]:
        raise CodemodError(f"{what} {value!r} uses the Python keyword {bad[0]!r}; choose another name")
    return value


def to_mentions(found: list[TextMention]) -> list[Mention]:
    return [Mention(path=m.path, line=m.line, text=m.text) for m in found]


def transaction(root: Path, operation: CodemodName, body: Body) -> CodemodResult:
    """Run `body` on a snapshotted root; restore every file if it raises or leaves a changed
    Python file that no longer parses. Returns what changed, with body's mentions and notes."""
    snapshot = Snapshot.take(root)
    try:
        remaining, notes = body(snapshot)
        changed = snapshot.changed()
        broken = [f"{rel} ({problem})" for rel in changed
                  if (root / rel).is_file() and (problem := syntax_problem(root / rel))]
        if broken:
            raise CodemodError(f"{operation} left {', '.join(broken)} unparsable; every file was restored")
    except BaseException as exc:
        snapshot.restore()
        if isinstance(exc, RopeFailed):
            raise CodemodError(f"{exc}; every file was restored") from exc
        raise
    return CodemodResult(operation=operation, changed_files=changed, remaining=remaining, notes=notes)
