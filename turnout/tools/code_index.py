"""The local code index: what the Retriever searches, and where symbol choices come from.

    index = CodeIndex.build(Path("."))          # walks, chunks, caches under .turnout/index/
    index.search("where are invoices totalled")  # BM25 over functions, methods, classes, text
    index.definitions("Invoice.add_line")        # the chunk(s) that define it
    index.references("add_line")                 # every use, file and line
    index.symbols()                              # the enum a small model must choose from

Everything stays on the machine: no model, no network. A refresh re-reads only files whose
size or mtime changed (and re-chunks only those whose content hash changed), so calling
it before each use is cheap.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from pydantic import BaseModel

from turnout.errors import ConfigError, UserError
from turnout.telemetry._spans import traced_tool
from turnout.tools import _index_store as store
from turnout.tools._chunking import Chunk, line_chunks, parse_python, python_chunks
from turnout.tools._lexical import LexicalIndex, code_tokens, top
from turnout.tools._occurrences import python_occurrences, text_occurrences
from turnout.tools._walk import SourceFile, WalkReport, inside, is_python, read_text, source_files

logger = logging.getLogger("turnout.tools")
DEFAULT_MAX_FILE_BYTES = 512_000
_RACY_NS = 2_000_000_000  # a file modified this close to the last refresh is hashed, not trusted
_IMPORTS = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]+(?:\([^)]*\)|[^\n]*)", re.MULTILINE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)*")


class Hit(BaseModel):
    """One search result; `rank` starts at 1."""

    chunk: Chunk
    score: float
    rank: int


class Reference(BaseModel):
    """A use of an identifier: file, 1-based line, and that line's text (stripped)."""

    path: str
    line: int
    text: str


class IndexStats(BaseModel):
    """What one refresh did. `reindexed` and `removed` are root-relative posix paths."""

    files: int
    chunks: int
    reindexed: list[str]
    removed: list[str]
    skipped: int
    seconds: float


def chunk_tokens(chunk: Chunk) -> list[str]:
    """What BM25 sees of a chunk: its symbol (twice: a name match is strong evidence), path and text.

    Import statements are left out: an import names code that lives elsewhere, so it would
    only pull short import blocks above the definitions a query is after (`references`
    is the tool that finds imports).
    """
    symbol = code_tokens(chunk.symbol or "")
    text = _IMPORTS.sub("", chunk.text) if chunk.kind == "module" else chunk.text
    return symbol + symbol + code_tokens(chunk.path) + code_tokens(text)


def _module_name(path: str) -> str:
    dotted = path.rsplit(".", 1)[0].replace("/", ".")
    return dotted.removesuffix(".__init__")


def _index_file(file: SourceFile, text: str, digest: str) -> store.FileEntry:
    tree = parse_python(text) if is_python(file.rel) else None
    if tree is not None:
        chunks, occurrences = python_chunks(file.rel, text, tree), python_occurrences(tree)
    else:
        chunks, occurrences = line_chunks(file.rel, text), text_occurrences(text)
    return store.FileEntry(size=file.size, mtime_ns=file.mtime_ns, sha256=digest,
                           chunks=chunks, occurrences=occurrences)


class CodeIndex:
    """Chunks, BM25 search and symbol lookup over one directory tree.

    `CodeIndex(root)` loads the cached index as it was last saved; `refresh()` brings it up
    to date with the files; `CodeIndex.build(root)` does both. Not safe for concurrent
    refreshes of the same root from several threads or processes.
    """

    def __init__(self, root: Path | str, *, cache_dir: Path | str | None = None,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        given = Path(root).expanduser()
        if not given.exists():
            raise ConfigError(f"code index root {str(given)!r} does not exist; pass the directory "
                              "of the repository to index, e.g. CodeIndex.build(Path('.'))")
        if not given.is_dir():
            raise ConfigError(f"code index root {str(given)!r} is a file, not a directory; pass "
                              "the directory that holds the repository")
        if max_file_bytes < 1:
            raise ConfigError(f"max_file_bytes must be a positive number of bytes, not {max_file_bytes}")
        self.root = given.resolve()
        self.max_file_bytes = max_file_bytes
        directory = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".turnout" / "index"
        self.cache_path = directory / store.CACHE_FILE
        snapshot = store.load(self.cache_path, root=self.root, max_file_bytes=max_file_bytes)
        self._snapshot = snapshot or store.Snapshot(root=str(self.root), max_file_bytes=max_file_bytes)
        self._cached = snapshot is not None
        self._chunks: list[Chunk] | None = None
        self._lexical: LexicalIndex | None = None
        self._warned = False

    @classmethod
    def build(cls, root: Path | str, *, cache_dir: Path | str | None = None,
              max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> CodeIndex:
        """An index of `root`, brought up to date (re-reading only what changed since the cache)."""
        index = cls(root, cache_dir=cache_dir, max_file_bytes=max_file_bytes)
        index.refresh()
        return index

    # -- keeping up with the files -------------------------------------------------------

    @traced_tool("index_code")
    def refresh(self) -> IndexStats:
        """Re-index new and changed files, drop deleted ones, save the cache; say what changed."""
        started, now_ns = time.perf_counter(), time.time_ns()
        files, report = self._snapshot.files, WalkReport()
        racy_before = self._snapshot.refreshed_ns - _RACY_NS
        seen: set[str] = set()
        reindexed: list[str] = []
        unreadable, touched = 0, False
        own_cache = frozenset({self.cache_path.parent.resolve()})
        for file in source_files(self.root, self.max_file_bytes, report, skip=own_cache):
            old = files.get(file.rel)
            if old and (old.size, old.mtime_ns) == (file.size, file.mtime_ns) and old.mtime_ns < racy_before:
                seen.add(file.rel)
                continue
            read = read_text(self.root, file, self.max_file_bytes)
            if read is None:  # binary, or gone since the walk: treated as absent
                unreadable += 1
                continue
            seen.add(file.rel)
            text, digest = read
            if old and old.sha256 == digest:
                if (old.size, old.mtime_ns) != (file.size, file.mtime_ns):
                    files[file.rel] = old.model_copy(update={"size": file.size, "mtime_ns": file.mtime_ns})
                    touched = True
                continue
            files[file.rel] = _index_file(file, text, digest)
            reindexed.append(file.rel)
        removed = sorted(set(files) - seen)
        for rel in removed:
            del files[rel]
        self._snapshot.refreshed_ns = now_ns
        if reindexed or removed:
            self._chunks, self._lexical = None, None
        if reindexed or removed or touched or not self._cached:
            self._save()
        return IndexStats(files=len(files), chunks=len(self.chunks), reindexed=reindexed, removed=removed,
                          skipped=report.outside_root + report.too_large + unreadable,
                          seconds=time.perf_counter() - started)

    def _save(self) -> None:
        try:
            store.save(self.cache_path, self._snapshot)
            self._cached = True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot write the code index cache %s (%s); the index works in "
                               "memory but will re-read every file next time", self.cache_path, exc)

    # -- reading it ----------------------------------------------------------------------

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk, by path and then by line."""
        if self._chunks is None:
            files = self._snapshot.files
            self._chunks = [chunk for rel in sorted(files) for chunk in files[rel].chunks]
        return list(self._chunks)

    @property
    def files(self) -> list[str]:
        """Indexed files, root-relative posix paths, sorted."""
        return sorted(self._snapshot.files)

    @traced_tool("search_code")
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k chunks that best match `query` by BM25, best first (fewer when fewer match)."""
        if k < 1:
            raise UserError(f"search needs k >= 1 results, not {k}")
        chunks, tokens = self.chunks, code_tokens(query)
        if not chunks or not tokens:
            return []
        if self._lexical is None:
            self._lexical = LexicalIndex([chunk_tokens(c) for c in chunks])
        scores = self._lexical.scores(tokens)
        return [Hit(chunk=chunks[i], score=float(scores[i]), rank=rank)
                for rank, i in enumerate(top(scores, k), start=1)]

    @traced_tool("find_definitions")
    def definitions(self, name: str) -> list[Chunk]:
        """Chunks defining `name`: bare (`add_line`), qualified (`Invoice.add_line`) or with
        its module (`billing.invoice.Invoice.add_line`)."""
        name = _checked(name).replace(":", ".")
        suffix = "." + name
        found = []
        for chunk in self.chunks:
            if chunk.symbol is None:
                continue
            full = f"{_module_name(chunk.path)}.{chunk.symbol}"
            if name in (chunk.symbol, full) or full.endswith(suffix):
                found.append(chunk)
        return found

    @traced_tool("find_references")
    def references(self, name: str) -> list[Reference]:
        """Uses of the identifier `name` (for a qualified name, of its last part), by file and line.

        Lexical, as of the last refresh: Python uses come from the syntax tree (names,
        attributes, imports, identifier strings such as `__all__` entries), other text files
        give whole-word matches. Definitions themselves are not listed; see `definitions`.
        """
        target = re.split(r"[.:]", _checked(name))[-1]
        found: list[Reference] = []
        for rel in self.files:
            numbers = self._snapshot.files[rel].occurrences.get(target)
            if not numbers:
                continue
            lines = self._read_lines(rel)
            found.extend(Reference(path=rel, line=n, text=lines[n - 1].strip() if n <= len(lines) else "")
                         for n in numbers)
        return found

    def symbols(self) -> list[str]:
        """Every defined function, class and method, qualified (`Invoice.add_line`), sorted."""
        return sorted({chunk.symbol for chunk in self.chunks if chunk.symbol})

    def _read_lines(self, rel: str) -> list[str]:
        target = inside(self.root, self.root / rel)
        try:
            return target.read_text(encoding="utf-8", errors="replace").splitlines() if target else []
        except OSError:
            return []


def _checked(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise UserError(f"{name!r} is not a symbol name; pass an identifier such as 'load' or a "
                        "qualified name such as 'Invoice.add_line'")
    return name
