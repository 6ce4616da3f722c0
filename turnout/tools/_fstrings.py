"""`convert_to_fstrings`: ruff's pyupgrade rules for string formatting: UP030 (numbered
`{0}` fields), UP031 (`%` formatting) and UP032 (`.format`), in one fixing run (ruff repeats
its fixes until none applies, so `"{0}".format(x)` ends as an f-string too).

ruff runs `--isolated` (the repository's own ruff config cannot widen the rule set or
exclude the files asked for) and `--no-cache` (nothing written into the repository), with
unsafe fixes on: UP031's fix is marked unsafe because `%` and f-strings differ for a tuple
argument, which is the kind of case the repository's tests then check. What ruff reports
but cannot fix comes back as remaining mentions.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from turnout.tools._codemod_files import Snapshot, python_files
from turnout.tools._codemod_run import relative, root_dir, transaction
from turnout.tools.codemods import CodemodError, CodemodResult, Mention

_TARGET_VERSION = re.compile(r"py3\d{1,2}")
_BATCH = 200  # files per ruff call: keeps command lines short on any OS
RULES = "UP030,UP031,UP032"


def _ruff() -> list[str]:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    if found := shutil.which("ruff"):
        return [found]
    raise CodemodError("ruff is not installed; install it (pip install ruff) to convert to f-strings")


def selected_files(root: Path, paths: list[str] | None) -> list[str]:
    """The Python files `paths` names (files or folders under `root`), or every one."""
    every = python_files(root, stubs=False)
    if paths is None:
        return every
    chosen: set[str] = set()
    for given in paths:
        rel = relative(root, given, what="path")
        if (root / rel).is_dir():
            prefix = "" if rel == "." else rel + "/"
            chosen.update(r for r in every if r.startswith(prefix))
        elif rel.endswith(".py"):
            chosen.add(rel)
        else:
            raise CodemodError(f"path {given!r} is not a Python file or directory")
    return sorted(chosen)


def _run_ruff(root: Path, command: list[str], files: list[str]) -> list[Mention]:
    done = subprocess.run([*command, "--", *files], cwd=root, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        problem = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CodemodError(f"ruff failed (exit {done.returncode}): {problem}")
    left = []
    for item in json.loads(done.stdout or "[]"):
        rel = Path(item["filename"]).resolve().relative_to(root).as_posix()
        line = item["location"]["row"]
        lines = (root / rel).read_text(encoding="utf-8").splitlines()
        text = lines[line - 1].strip() if line <= len(lines) else ""
        left.append(Mention(path=rel, line=line, text=f"{item['code']}: {text}"))
    return left


def _command(target_version: str, *, fix: bool) -> list[str]:
    if not _TARGET_VERSION.fullmatch(target_version):
        raise CodemodError(f"target_version must look like 'py311', not {target_version!r}")
    return [*_ruff(), "check", "--select", RULES, *(["--fix", "--unsafe-fixes"] if fix else []),
            "--target-version", target_version, "--no-cache", "--isolated", "--exit-zero", "--output-format", "json"]


def convert(root: Path | str, paths: list[str] | None, *, target_version: str) -> CodemodResult:
    base = root_dir(root)
    command = _command(target_version, fix=True)
    files = selected_files(base, paths)
    if not files:
        return CodemodResult(operation="convert_to_fstrings", changed_files=[], notes=["no Python files to convert"])

    def body(snapshot: Snapshot) -> tuple[list[Mention], list[str]]:
        batches = [files[start:start + _BATCH] for start in range(0, len(files), _BATCH)]
        left = [mention for batch in batches for mention in _run_ruff(base, command, batch)]
        notes = [f"ruff checked {len(files)} file(s) for {RULES} (target {target_version})"]
        if left:
            notes.append(f"{len(left)} formatting call(s) ruff could not convert (see remaining)")
        return left, notes

    return transaction(base, "convert_to_fstrings", body)
