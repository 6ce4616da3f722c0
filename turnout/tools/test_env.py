"""Which interpreter runs a repository's tests, and proof that it tests the workspace's code.

    env = await resolve_test_environment(repo, workspace)   # the repo's own venv, or the one named
    report = await run_tests(workspace, python=env.python, pythonpath=env.pythonpath)

The interpreter is chosen in this order: the one named (`--python`, `[refactor] python`); the
repository's own `.venv`, `venv` or `env`; an active `VIRTUAL_ENV` that is not turnout's own;
else an isolated environment made from the project's declared test dependencies
(`isolated_env`), or turnout's own interpreter when `[refactor] environment = "turnout"`; the
report says which, and why. A project installed editable
into that interpreter would make the tests import the user's original files instead of the
workspace copy, so before any test runs, the project's top-level packages are imported from
the workspace and their `__file__` checked; the workspace's source root goes first on the path
when that is what it takes, and when the copy cannot be proven to be what is imported, the run
stops: a verification against the user's tree would prove nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from turnout.errors import ConfigError, UserError
from turnout.tools.sandbox import Sandbox

_VENV_DIRS = (".venv", "venv", "env")
_NOT_PACKAGES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks", "bench",
                           "scripts", "tools", "build", "dist", "site-packages"})
_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = getattr(importlib.import_module(name), "__file__", None) or "(namespace)"
    except Exception as exc:
        found[name] = "error: " + type(exc).__name__ + ": " + str(exc)[:300]
print(json.dumps(found))
"""


class WorkspaceNotTested(UserError):
    """The tests would import the project from somewhere other than the workspace copy."""


class TestEnvironment(BaseModel):
    """The interpreter for a repository's tests, how it was chosen, and what goes first on the path."""

    __test__ = False  # not a pytest test class, whatever its name

    python: str
    chosen_by: str
    pythonpath: list[str] = []
    first_on_path: str | None = None  # the same, as a person reads it: "the workspace's src/"
    checked: dict[str, str] = {}  # top-level package -> the file it was imported from
    sandbox: Sandbox | None = None  # what the repository's code runs under (None: resolved when used)

    def runner(self) -> Sandbox:
        """The sandbox this environment's code runs under, resolved here when none was given."""
        return self.sandbox if self.sandbox is not None else Sandbox.resolve()

    def describe(self) -> str:
        path = f"; {self.first_on_path} first on the path" if self.first_on_path else ""
        return f"{self.python} ({self.chosen_by}{path})"


def _venv_python(folder: Path) -> Path | None:
    for candidate in (folder / "bin" / "python", folder / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def find_interpreter(repo: Path, named: str | None = None, *, workspace: Path | None = None,
                     fallback: Literal["isolated", "turnout"] = "isolated", needs_pytest: bool = True) -> tuple[str, str]:
    """(interpreter, why it was chosen) for the tests of `repo`. With no interpreter named and
    none in the repository or active, `fallback` decides: an isolated environment made from the
    declarations of `workspace` (the copy; `repo` when not given), or turnout's own Python."""
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            raise ConfigError(f"the interpreter {named!r} does not exist; pass --python with the Python that "
                              "runs this repository's tests (its virtual environment's bin/python)")
        return str(path), "named with --python or [refactor] python"
    for name in _VENV_DIRS:
        if python := _venv_python(Path(repo) / name):
            return str(python), f"the repository's own {name}/"
    active = os.environ.get("VIRTUAL_ENV")
    if active and Path(active).resolve() != Path(sys.prefix).resolve() and (python := _venv_python(Path(active))):
        return str(python), "the active VIRTUAL_ENV"
    if fallback == "isolated":
        from turnout.tools.isolated_env import isolated_environment

        made = isolated_environment(Path(workspace or repo), needs_pytest=needs_pytest)
        return made.python, made.describe()
    return sys.executable, ("turnout's own Python, as [refactor] environment = \"turnout\" says (no .venv, venv or "
                            "env, no active virtual environment); pass --python to use the project's")


def top_level_packages(root: Path) -> tuple[Path, list[str]]:
    """(source root, the importable packages directly in it): `src/` when the project uses
    that layout, else the repository root."""
    source = root / "src" if (root / "src").is_dir() else root
    names = sorted(entry.name for entry in source.iterdir()
                   if entry.is_dir() and (entry / "__init__.py").is_file() and entry.name.isidentifier()
                   and entry.name not in _NOT_PACKAGES)
    return source, names


async def _imported_from(python: str, workspace: Path, names: list[str], pythonpath: list[str],
                         sandbox: Sandbox) -> dict[str, str]:
    argv, env = await asyncio.to_thread(sandbox.process, [python, "-c", _PROBE, *names], root=workspace, python=python,
                                        pythonpath=pythonpath)
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=workspace, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        raise WorkspaceNotTested(f"importing {', '.join(names)} with {python} did not finish in 120 s") from None
    if process.returncode != 0:
        raise WorkspaceNotTested(f"{python} could not check where {', '.join(names)} is imported from: "
                                 f"{err.decode(errors='replace').strip()[-500:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def _outside(found: dict[str, str], workspace: Path) -> dict[str, str]:
    inside = workspace.resolve()
    return {name: where for name, where in found.items()
            if where.startswith("error: ") or where == "(namespace)" or not Path(where).resolve().is_relative_to(inside)}


async def resolve_test_environment(repo: Path, workspace: Path, named: str | None = None, *,
                                   fallback: Literal["isolated", "turnout"] = "isolated",
                                   needs_pytest: bool = True, sandbox: Sandbox | None = None) -> TestEnvironment:
    """The interpreter for `repo`'s tests and the path that makes it import `workspace`'s code;
    `sandbox` is what that code runs under, here and in every later test run or check."""
    if sandbox is None:
        sandbox = await asyncio.to_thread(Sandbox.resolve, "auto", hide=[repo])
    # File work off the event loop: an ASGI server (langgraph dev) refuses blocking calls on it.
    python, chosen_by = await asyncio.to_thread(find_interpreter, repo, named, workspace=workspace,
                                                fallback=fallback, needs_pytest=needs_pytest)
    source, names = await asyncio.to_thread(top_level_packages, workspace)
    if not names:
        return TestEnvironment(python=python, chosen_by=chosen_by, sandbox=sandbox)
    found = await _imported_from(python, workspace, names, [], sandbox)
    if not await asyncio.to_thread(_outside, found, workspace):
        return TestEnvironment(python=python, chosen_by=chosen_by, checked=found, sandbox=sandbox)
    first = [str(source)]
    found = await _imported_from(python, workspace, names, first, sandbox)
    if wrong := await asyncio.to_thread(_outside, found, workspace):
        listed = "; ".join(f"{name} from {where}" for name, where in wrong.items())
        raise WorkspaceNotTested(
            f"the tests would not import the workspace copy of the project ({listed}), even with {source} first "
            f"on the path, using {python} ({chosen_by}); verifying would prove nothing about the edit. Pass "
            "--python with an interpreter that can import the project's dependencies")
    shown = "the workspace's " + (f"{source.relative_to(workspace)}/" if source != workspace else "root")
    return TestEnvironment(python=python, chosen_by=chosen_by, pythonpath=first, first_on_path=shown, checked=found,
                           sandbox=sandbox)
