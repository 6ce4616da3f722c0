"""turnout's own tools over one repository, ready for `Agent(tools=…)`.

    repo = RepositoryTools("path/to/repo")
    agent = Agent("explorer", model="llamacpp/smollm2", tools=repo.reading())

Reading tools (`reading()`): search the code, find a symbol's definitions and uses, read
lines of a file, list files. Changing tools (`changing()`): rename a symbol, move a function,
replace a definition — in a workspace copy of the repository, never in the repository
itself — plus the workspace's diff and its tests. `repo.workspace.apply_to_repo()` is yours
to call once you have checked the diff.

Every path a model passes is confined to the repository (absolute paths, `..`, `.git` and
symlinks that lead out are refused, and the model is told why). Each result says what it
holds, for the egress guard: locations and signatures are `path`/`signature`, which a remote
model may see under `no-code`; source lines, diffs and test output are `code`, `diff` and
`test_output`, which it may not.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from pydantic import Field

from turnout.agents.tools import Tool
from turnout.engines import tag
from turnout.engines.tag import Part, Tagged
from turnout.errors import UserError
from turnout.tools import (
    CodeIndex,
    Workspace,
    detect_test_command,
    move_function,
    rename_symbol,
    replace_definition,
    run_tests,
)
from turnout.tools.edits import _inside

MAX_READ_LINES = 200


class RepositoryTools:
    """The tools of one repository; `reading()` and `changing()` give them to an agent."""

    def __init__(self, repo: Path | str, *, run_id: str | None = None) -> None:
        root = Path(repo).expanduser().resolve()
        if not root.is_dir():
            raise UserError(f"repository {str(repo)!r} is not a directory; pass the folder that holds the code")
        self.root = root
        self.run_id = run_id or f"agent-{uuid.uuid4().hex[:8]}"
        self._index: CodeIndex | None = None
        self._workspace: Workspace | None = None

    @property
    def index(self) -> CodeIndex:
        """The code index, built on first use (and refreshed from its cache)."""
        if self._index is None:
            self._index = CodeIndex.build(self.root)
        return self._index

    @property
    def workspace(self) -> Workspace:
        """The copy the changing tools work in, made on first use."""
        if self._workspace is None:
            self._workspace = Workspace.create(self.root, self.run_id)
        return self._workspace

    def reading(self) -> list[Tool]:
        return [Tool(self.search_code, kind="code"), Tool(self.find_symbol, kind="signature"),
                Tool(self.find_references, kind="code"), Tool(self.read_file, kind="code"),
                Tool(self.list_files, kind="path")]

    def changing(self) -> list[Tool]:
        return [Tool(self.rename_symbol, kind="path"), Tool(self.move_function, kind="path"),
                Tool(self.replace_definition, kind="path"), Tool(self.workspace_diff, kind="diff"),
                Tool(self.run_tests, kind="test_output", timeout_s=900)]

    # --- reading ------------------------------------------------------------------------

    def search_code(self, query: str, limit: Annotated[int, Field(ge=1, le=20)] = 5) -> Tagged:
        """Search the repository's code for words (BM25); the best matches' locations, symbols and text."""
        parts: list[Part | Tagged] = []
        for hit in self.index.search(query, limit):
            chunk = hit.chunk
            parts += [tag.path(chunk.location), tag.instructions(" "),
                      tag.signature(chunk.symbol or "(module text)"), tag.instructions("\n"),
                      tag.code(chunk.text.rstrip(), origin=chunk.location), tag.instructions("\n")]
        return tag.join(parts, "") if parts else tag.as_tagged(tag.instructions("no matches"))

    def find_symbol(self, name: str) -> Tagged:
        """Where a function, class or method (`Class.method`) is defined: file, lines and signature."""
        found = self.index.definitions(name)
        if not found:
            return tag.as_tagged(tag.instructions(f"no definition of {name}"))
        return tag.join([tag.join([tag.path(chunk.location), tag.signature(_signature(chunk.text))], " ")
                         for chunk in found])

    def find_references(self, name: str) -> Tagged:
        """Where an identifier is used (not defined): file, line and that line's text."""
        found = self.index.references(name)
        if not found:
            return tag.as_tagged(tag.instructions(f"no uses of {name}"))
        return tag.join([tag.join([tag.path(f"{r.path}:{r.line}"), tag.code(r.text, origin=f"{r.path}:{r.line}")], " ")
                         for r in found[:50]])

    def read_file(self, path: str, start: Annotated[int, Field(ge=1)] = 1,
                  end: Annotated[int | None, Field(ge=1)] = None) -> Part:
        """Lines `start` to `end` (1-based, inclusive; at most 200) of a file in the repository."""
        target = _inside(self.root, path)
        if not target.is_file():
            raise UserError(f"{path} is not a file in the repository; list_files shows what there is")
        lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
        last = min(len(lines), end or start + MAX_READ_LINES - 1, start + MAX_READ_LINES - 1)
        numbered = "\n".join(f"{n}: {lines[n - 1]}" for n in range(start, last + 1))
        return tag.code(numbered or f"(the file has {len(lines)} lines)", origin=f"{path}:{start}-{last}")

    def list_files(self, under: str = "") -> Part:
        """The repository's indexed files (source and text), optionally only those under a folder."""
        if under:
            _inside(self.root, under)
        prefix = under.rstrip("/") + "/" if under else ""
        return tag.path("\n".join(f for f in self.index.files if f.startswith(prefix)) or "(none)")

    # --- changing, in the workspace -----------------------------------------------------

    def rename_symbol(self, old: str, new: str, path: str | None = None) -> str:
        """Rename a function, class, method (`Class.method`) or module everywhere it is used, in
        the workspace copy; the files changed and mentions left for review."""
        if path is not None:
            _inside(self.workspace.path, path)
        result = rename_symbol(self.workspace.path, old, new, path=path)
        return _changed(result.changed_files, [f"{m.path}:{m.line}" for m in result.remaining])

    def move_function(self, name: str, from_path: str, to_module: str) -> str:
        """Move a module-level function or class to another module (dotted name), in the workspace
        copy; imports follow, and the old module re-exports it."""
        _inside(self.workspace.path, from_path)
        result = move_function(self.workspace.path, name, from_path, to_module)
        return _changed(result.changed_files, [f"{m.path}:{m.line}" for m in result.remaining])

    def replace_definition(self, path: str, symbol: str, new_code: str) -> str:
        """Replace a function, class or method's whole definition with `new_code`, in the workspace copy."""
        _inside(self.workspace.path, path)
        return _changed(replace_definition(self.workspace.path, path, symbol, new_code).changed, [])

    def workspace_diff(self) -> Part:
        """The diff of the workspace copy against the repository as it was."""
        return tag.diff(self.workspace.diff() or "(no changes)", origin=f"workspace {self.run_id}")

    async def run_tests(self, test_ids: list[str] | None = None) -> Tagged:
        """Run the repository's tests in the workspace copy (or only the pytest ids given, such as
        `tests/test_tax.py::test_uk`); the counts, the failing tests and the output's end."""
        path = self.workspace.path
        command = None
        if test_ids:
            command = detect_test_command(path)
            if command is None or "pytest" not in " ".join(command):
                raise UserError("test ids need a pytest suite; this repository's tests run otherwise: run them all")
            for test_id in test_ids:
                if test_id.startswith("-"):
                    raise UserError(f"{test_id!r} is an option, not a test id; pass ids such as tests/test_a.py::test_b")
                _inside(path, test_id.split("::")[0])
            command = [*command, *test_ids]
        report = await run_tests(path, command)
        return tag.join([tag.path(report.summary()), tag.test_output(report.output_tail[-2000:], origin="run_tests")])


def _signature(text: str) -> str:
    """A definition's header on one line, however many lines it spans (`def f(\n  a,\n) -> T`)."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if line.strip().startswith(("def ", "async def ", "class ")):
            header: list[str] = []
            depth = 0
            for part in lines[start:start + 20]:
                header.append(part.strip())
                depth += part.count("(") + part.count("[") - part.count(")") - part.count("]")
                if depth <= 0 and part.rstrip().endswith((":", ": ...", ":...")):
                    break
            joined = " ".join(header).replace("( ", "(").replace(" )", ")")
            return joined.removesuffix("...").rstrip().removesuffix(":")
    return lines[0].strip() if lines else ""


def _changed(files: list[str], remaining: list[str]) -> str:
    text = "changed: " + (", ".join(files) or "nothing")
    if remaining:
        text += "\nmentions left to review: " + ", ".join(remaining[:30])
    return text
