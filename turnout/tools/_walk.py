"""Which files of a repository the code index may read, and reading them safely.

The index hands repository text to models, so it must never read outside the root it was
given: symlinked directories are not followed, symlinked files count only when their
target lies inside the root, and every path is resolved and checked again right before it
is read. Build output, virtualenvs, caches and binaries are skipped: they are large, not
the team's code, and would drown the real answers in search.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The one list of folders a walk of a repository leaves out (the code index, the codemods,
# rope, the workspace copy, test detection, the project copy an environment installs from):
# never the project's own files — version control, environments, caches, turnout's folder …
NOT_PROJECT_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".turnout",
        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    }
)
# … and build output: never read as the team's code, but copied with the tree, where a
# project may keep something it needs under `build/`.
BUILD_DIRS = frozenset({".eggs", "dist", "build"})
SKIP_DIRS = NOT_PROJECT_DIRS | BUILD_DIRS
PYTHON_SUFFIXES = frozenset({".py", ".pyi"})
TEXT_SUFFIXES = PYTHON_SUFFIXES | frozenset(
    {
        ".md", ".markdown", ".rst", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json",
        ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".html", ".css", ".sh", ".bash", ".sql",
        ".rs", ".go", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp", ".rb", ".lua", ".proto",
        ".graphql", ".tf",
    }
)
TEXT_NAMES = frozenset({"Makefile", "Dockerfile", "Justfile", "README", "LICENSE", "CHANGES", "NOTICE"})
BINARY_PROBE_BYTES = 8192


@dataclass(frozen=True)
class SourceFile:
    """A file the index may read: its posix path relative to the root, and its stat."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class WalkReport:
    """How many candidate files were left out, and why (for `IndexStats`)."""

    outside_root: int = 0
    too_large: int = 0


def is_python(rel: str) -> bool:
    return Path(rel).suffix in PYTHON_SUFFIXES


def _wanted(name: str) -> bool:
    return Path(name).suffix.lower() in TEXT_SUFFIXES or name in TEXT_NAMES


def skipped_dir(directory: Path, name: str, *, keep_build_output: bool = False,
                also: frozenset[Path] = frozenset()) -> bool:
    """Whether a walk leaves out the folder `name` in `directory`: one of `SKIP_DIRS` (or of
    `NOT_PROJECT_DIRS` only, with `keep_build_output`), a `*.egg-info`, a virtual environment
    by any name (a `pyvenv.cfg` inside), or one of `also`."""
    path = directory / name
    return (name in NOT_PROJECT_DIRS or name.endswith(".egg-info") or (not keep_build_output and name in BUILD_DIRS)
            or (path / "pyvenv.cfg").exists() or (bool(also) and path in also))


def walk(top: Path, *, keep_build_output: bool = False,
         also: frozenset[Path] = frozenset()) -> Iterator[tuple[Path, list[str], list[str]]]:
    """`os.walk(top)` pruned by `skipped_dir`, in sorted order; symlinked folders are listed
    in their parent's folders but never entered."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        directory = Path(dirpath)
        kept = (d for d in dirnames if not skipped_dir(directory, d, keep_build_output=keep_build_output, also=also))
        dirnames[:] = sorted(kept)
        yield directory, dirnames, sorted(filenames)


def inside(root: Path, path: Path) -> Path | None:
    """`path` with symlinks resolved, or None when it lands outside `root` (already resolved)."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link, loop, permission
        return None
    return resolved if resolved.is_relative_to(root) else None


def source_files(root: Path, max_file_bytes: int, report: WalkReport,
                 skip: frozenset[Path] = frozenset()) -> Iterator[SourceFile]:
    """Every indexable text file under `root` (resolved), in a stable order.

    `skip` holds further directories to leave out (the index's own cache, wherever it is).
    Binaries are not detected here (that needs the content): see `read_text`.
    """
    for directory, _, filenames in walk(root, also=skip):
        for name in filenames:
            if not _wanted(name):
                continue
            path = directory / name
            target = inside(root, path)
            if target is None or not target.is_file():
                report.outside_root += 1
                continue
            stat = target.stat()
            if stat.st_size > max_file_bytes:
                report.too_large += 1
                continue
            yield SourceFile(path.relative_to(root).as_posix(), path, stat.st_size, stat.st_mtime_ns)


def read_text(root: Path, file: SourceFile, max_file_bytes: int) -> tuple[str, str] | None:
    """(text, sha256 of the bytes), or None for a binary, vanished, escaped or grown-too-large file."""
    target = inside(root, file.path)
    if target is None:
        return None
    try:
        with open(target, "rb") as f:
            data = f.read(max_file_bytes + 1)
    except OSError:
        return None
    if len(data) > max_file_bytes or b"\0" in data[:BINARY_PROBE_BYTES]:
        return None
    return data.decode("utf-8", errors="replace"), hashlib.sha256(data).hexdigest()
