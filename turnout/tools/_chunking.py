"""Cutting files into the chunks the code index searches and hands to models.

A chunk is one unit a model can read and act on: a function, a method, a class outline,
the module code between definitions, or a window of ~40 lines of any other text file.
Python is cut with `ast` so a chunk is never half a function; a file that does not parse
(Python 2, a syntax error mid-edit) falls back to line windows, so it is still searchable.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

ChunkKind: TypeAlias = Literal["function", "class", "method", "module", "lines"]
WINDOW = 40
_SLACK = 10  # a window may end up to this many lines early or late, to end at a blank line

_Def: TypeAlias = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_BLOCKS = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)
_OVERLOAD_NAMES = frozenset({"overload", "typing.overload", "t.overload", "typing_extensions.overload"})


class Chunk(BaseModel):
    """A piece of one file: lines `start_line`..`end_line` (1-based, inclusive).

    `symbol` is the qualified name for definitions (`"Invoice.add_line"`), else None.
    A class chunk spans the whole class but its `text` is an outline: header, docstring,
    class attributes and each method's signature with the body elided, because every
    method is a chunk of its own.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    start_line: int
    end_line: int
    kind: ChunkKind
    symbol: str | None = None
    text: str

    @property
    def location(self) -> str:
        """`path:start-end`, unique within an index."""
        return f"{self.path}:{self.start_line}-{self.end_line}"


def parse_python(text: str) -> ast.Module | None:
    """The module's syntax tree, or None when it does not parse as this Python's syntax."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes etc. are the repo's business
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _windows(lines: list[str], first: int, last: int) -> Iterator[tuple[int, int]]:
    """1-based inclusive ranges covering first..last, ~WINDOW lines each.

    A window ends at the blank line nearest its target end when one is within _SLACK
    lines, and swallows a remainder shorter than _SLACK rather than leave a scrap.
    """
    start = first
    while start <= last:
        end = start + WINDOW - 1
        if last - end <= _SLACK:
            end = last
        else:
            nearby = (end + d * sign for d in range(_SLACK + 1) for sign in (1, -1))
            end = next((n for n in nearby if not lines[n - 1].strip()), end)
        yield start, end
        start = end + 1


def line_chunks(path: str, text: str, kind: ChunkKind = "lines") -> list[Chunk]:
    """~40-line windows of a whole file; windows with nothing but blank lines are dropped."""
    lines = text.splitlines()
    return _run_chunks(path, lines, 1, len(lines), kind)


def _run_chunks(path: str, lines: list[str], first: int, last: int, kind: ChunkKind) -> list[Chunk]:
    chunks = []
    for start, end in _windows(lines, first, last):
        while start <= end and not lines[start - 1].strip():
            start += 1
        while end >= start and not lines[end - 1].strip():
            end -= 1
        if start <= end:
            chunks.append(Chunk(path=path, start_line=start, end_line=end, kind=kind,
                                text="\n".join(lines[start - 1 : end])))
    return chunks


def _scope_defs(statements: list[ast.stmt]) -> Iterator[_Def]:
    """Definitions that belong to this scope, including those under `if`/`try`/`with` blocks."""
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        elif isinstance(node, _BLOCKS):
            for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                yield from _scope_defs(block)
            for handler in getattr(node, "handlers", []):
                yield from _scope_defs(handler.body)


def _is_overload(node: _Def) -> bool:
    return any(ast.unparse(d) in _OVERLOAD_NAMES for d in node.decorator_list)


class _PythonChunker:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.chunks: list[Chunk] = []
        self.covered: set[int] = set()

    def run(self, tree: ast.Module) -> list[Chunk]:
        self._visit(tree.body, scope=None)
        uncovered = [n for n in range(1, len(self.lines) + 1) if n not in self.covered]
        for first, last in _runs(uncovered):
            self.chunks.extend(_run_chunks(self.path, self.lines, first, last, "module"))
        return sorted(self.chunks, key=lambda c: (c.start_line, -c.end_line))

    def _start(self, node: _Def) -> int:
        """First line of a definition: its decorators, and comment lines directly above it."""
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        while start > 1 and self.lines[start - 2].lstrip().startswith("#"):
            start -= 1
        return start

    def _end(self, node: _Def) -> int:
        """Last line of a definition, including comment lines indented into its body after it."""
        end = node.end_lineno or node.lineno
        while end < len(self.lines):
            line = self.lines[end]
            if not line.lstrip().startswith("#") or len(line) - len(line.lstrip()) <= node.col_offset:
                break
            end += 1
        return end

    def _visit(self, statements: list[ast.stmt], scope: str | None) -> None:
        stubs: dict[str, tuple[int, int]] = {}  # @overload stubs: name -> (first, last) line
        for node in _scope_defs(statements):
            name = f"{scope}.{node.name}" if scope else node.name
            start, end = self._start(node), self._end(node)
            if _is_overload(node):  # stubs join the implementation that follows them
                stubs[name] = (stubs.get(name, (start, end))[0], end)
                continue
            if name in stubs:
                start = min(start, stubs.pop(name)[0])
            if isinstance(node, ast.ClassDef):
                self._add("class", name, start, end, self._outline(node, start, end))
                self._visit(node.body, name)
            else:
                self._add("method" if scope else "function", name, start, end)
            if scope is None:
                self.covered.update(range(start, end + 1))
        for name, (start, end) in stubs.items():  # stubs alone, as in a .pyi file
            self._add("method" if scope else "function", name, start, end)
            if scope is None:
                self.covered.update(range(start, end + 1))

    def _add(self, kind: ChunkKind, symbol: str, start: int, end: int, text: str | None = None) -> None:
        if text is None:
            text = "\n".join(self.lines[start - 1 : end])
        self.chunks.append(Chunk(path=self.path, start_line=start, end_line=end, kind=kind,
                                 symbol=symbol, text=text))

    def _outline(self, node: ast.ClassDef, start: int, end: int) -> str:
        """The class's lines with each member definition's body replaced by `...`."""
        out: list[str] = []
        line = start
        for member in _scope_defs(node.body):
            body_start = member.body[0].lineno
            member_end = self._end(member)
            body_line = self.lines[body_start - 1]
            if body_line[: member.body[0].col_offset].strip() or body_start < line:
                continue  # the body shares the signature's line: nothing to elide
            out.extend(self.lines[line - 1 : body_start - 1])
            out.append(" " * member.body[0].col_offset + "...")
            line = member_end + 1
        out.extend(self.lines[line - 1 : end])
        return "\n".join(out)


def _runs(numbers: list[int]) -> Iterator[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted list, as (first, last)."""
    if not numbers:
        return
    first = previous = numbers[0]
    for n in numbers[1:]:
        if n != previous + 1:
            yield first, previous
            first = n
        previous = n
    yield first, previous


def python_chunks(path: str, text: str, tree: ast.Module) -> list[Chunk]:
    """Functions, classes (outlines), methods, and the module code between them."""
    return _PythonChunker(path, text).run(tree)
