"""Writing a verified change into the user's repository: all or nothing.

Every new file is staged beside its target first, then all are swapped in; on any failure
everything is put back, so a failed apply leaves the repository byte-identical.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from pathlib import Path

from turnout.errors import TurnoutError


class WorkspaceError(TurnoutError):
    """git failed, or files could not be copied or written, while managing a workspace."""


def _target(repo: Path, rel: str) -> Path:
    target = repo / rel
    parts = Path(rel).parts
    if ".." in parts or ".git" in parts or Path(rel).is_absolute() or not target.parent.resolve().is_relative_to(repo):
        raise WorkspaceError(f"refusing to write {rel!r}: it lies outside the repository {repo}")
    return target


def replace_all(repo: Path, workspace: Path, changes: list[tuple[str, str]]) -> None:
    """Stage every new file beside its target, then swap them in; on any failure put everything back."""
    tag = uuid.uuid4().hex[:12]
    staged: list[tuple[Path, Path | None]] = []   # (target, temp file; None to delete)
    created_dirs: list[Path] = []
    done: list[tuple[Path, Path | None]] = []     # (target, backup of the original; None if it was new)
    try:
        for status, rel in changes:
            target = _target(repo, rel)
            if status == "D":
                staged.append((target, None))
                continue
            if status == "A" and (target.exists() or target.is_symlink()):  # an ignored file the copy left out
                raise WorkspaceError(f"{rel} already exists in the repository (an ignored file?) but not in the "
                                     "run's copy; nothing was written, apply the exported patch by hand with git apply")
            for parent in reversed(target.relative_to(repo).parents[:-1]):
                if not (repo / parent).exists():
                    (repo / parent).mkdir()
                    created_dirs.append(repo / parent)
            temp = target.with_name(f".{target.name}.turnout-{tag}.new")
            source = workspace / rel
            if source.is_symlink():
                os.symlink(os.readlink(source), temp)
            else:
                shutil.copyfile(source, temp)
                os.chmod(temp, stat.S_IMODE(source.stat().st_mode))
            staged.append((target, temp))
        for target, temp in staged:
            backup = None
            if target.exists() or target.is_symlink():
                backup = target.with_name(f".{target.name}.turnout-{tag}.old")
                os.replace(target, backup)
            done.append((target, backup))
            if temp is not None:
                os.replace(temp, target)
    except BaseException as exc:
        for target, backup in reversed(done):
            if backup is not None:
                os.replace(backup, target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        for _, temp in staged:
            if temp is not None and (temp.exists() or temp.is_symlink()):
                temp.unlink()
        for directory in reversed(created_dirs):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        if isinstance(exc, OSError):
            raise WorkspaceError(f"could not write {exc.filename}: {exc.strerror}; the repository was left as "
                                 "it was, apply the exported patch by hand with git apply") from exc
        raise
    for target, backup in done:
        if backup is not None:
            backup.unlink()
        parent = target.parent
        while parent != repo and parent.is_dir() and not any(parent.iterdir()):  # as git apply does
            parent.rmdir()
            parent = parent.parent
