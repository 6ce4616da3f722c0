"""The files a codemod may touch: listing them, naming their modules, and undoing a codemod.

A codemod is all-or-nothing. Before it runs, every Python file (`.py`, `.pyi`) under the
root is snapshotted; if anything fails, or a changed file no longer parses, the snapshot
is written back, files the codemod added are deleted and directories it moved are moved
back. Only Python files are snapshotted because only Python files are edited (rope, the
rename sweep and ruff all write Python); a package rename moves a whole directory, which
is why moves are recorded and undone as moves.
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from turnout.tools._walk import WalkReport, read_text, source_files, walk

PYTHON_SUFFIXES = (".py", ".pyi")
MAX_MENTION_FILE_BYTES = 512_000


def python_files(root: Path, *, stubs: bool = True) -> list[str]:
    """Root-relative posix paths of every `.py` (and `.pyi`) file, sorted; build output,
    caches and virtualenvs are left out, symlinked directories are not entered."""
    suffixes = PYTHON_SUFFIXES if stubs else (".py",)
    found: list[str] = []
    for directory, _, filenames in walk(root):
        for name in filenames:
            path = directory / name
            if name.endswith(suffixes) and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def syntax_problem(path: Path) -> str | None:
    """Why the Python file at `path` does not parse ('line 3: invalid syntax'), or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return str(exc)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return str(exc) or type(exc).__name__
    return None


def char_column(line: str, byte_column: int) -> int:
    """The character column of a UTF-8 byte offset into `line` (ast columns are byte offsets,
    tokenize's and rope's are characters)."""
    return len(line.encode("utf-8")[:byte_column].decode("utf-8", errors="replace"))


def _is_package_dir(directory: Path) -> bool:
    return (directory / "__init__.py").is_file() or (directory / "__init__.pyi").is_file()


def module_name(root: Path, rel: str) -> str:
    """The dotted module a file is imported as: its directory is climbed while it is a package
    (`src/stockroom/inventory.py` -> `stockroom.inventory`, `pkg/__init__.py` -> `pkg`)."""
    path = root / rel
    stem = path.name.rsplit(".", 1)[0]
    parts = [] if stem == "__init__" else [stem]
    directory = path.parent
    while directory != root and _is_package_dir(directory):
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts)


def is_package_init(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] in ("__init__.py", "__init__.pyi")


def resolve_relative(module: str, is_package: bool, target: str | None, level: int) -> str:
    """The absolute module of `from <level dots><target> import ...` written in `module`."""
    if level == 0:
        return target or ""
    parts = module.split(".") if module else []
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, *([target] if target else [])])


@dataclass
class Snapshot:
    """The Python files under `root` as they were, to restore if a codemod fails midway."""

    root: Path
    files: dict[str, bytes]
    directories: set[str]
    moves: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def take(cls, root: Path) -> Snapshot:
        files = {rel: (root / rel).read_bytes() for rel in python_files(root)}
        directories = {directory.relative_to(root).as_posix() for directory, _, _ in walk(root)}
        return cls(root=root, files=files, directories=directories)

    def record_move(self, source: str, destination: str) -> None:
        """Remember that a directory moved, so `restore` can move it back."""
        self.moves.append((source, destination))

    def changed(self) -> list[str]:
        """Python files added, removed or edited since the snapshot (root-relative, sorted)."""
        now = set(python_files(self.root))
        changed = now.symmetric_difference(self.files)
        for rel in now & set(self.files):
            if (self.root / rel).read_bytes() != self.files[rel]:
                changed.add(rel)
        return sorted(changed)

    def restore(self) -> None:
        """Put every snapshotted file back as it was and delete the Python files added since."""
        for source, destination in reversed(self.moves):
            src, dst = self.root / source, self.root / destination
            if dst.exists() and not src.exists():
                src.parent.mkdir(parents=True, exist_ok=True)
                os.replace(dst, src)
        for rel in set(python_files(self.root)) - set(self.files):
            (self.root / rel).unlink()
        for rel, data in self.files.items():
            path = self.root / rel
            if not path.is_file() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        for dirpath in sorted((str(w[0]) for w in walk(self.root)), key=len, reverse=True):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            if rel not in self.directories and not os.listdir(dirpath):
                os.rmdir(dirpath)


@dataclass(frozen=True)
class TextMention:
    path: str
    line: int
    text: str


def mentions(root: Path, pattern: re.Pattern[str]) -> list[TextMention]:
    """Lines of every text file under `root` (the code index's idea of text) matching `pattern`."""
    found: list[TextMention] = []
    for file in source_files(root, MAX_MENTION_FILE_BYTES, WalkReport()):
        read = read_text(root, file, MAX_MENTION_FILE_BYTES)
        if read is None:
            continue
        for number, line in enumerate(read[0].splitlines(), start=1):
            if pattern.search(line):
                found.append(TextMention(file.rel, number, line.strip()))
    return found


def word_pattern(word: str) -> re.Pattern[str]:
    """`word` as a whole identifier, or a dotted path not inside a longer dotted path."""
    before = r"(?<![\w.])" if "." in word else r"(?<!\w)"
    return re.compile(rf"{before}{re.escape(word)}(?!\w)")
