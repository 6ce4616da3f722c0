"""An environment for a repository's tests, made from what the project declares, when the
repository brings none of its own.

    env = isolated_environment(workspace, needs_pytest=True)
    env.python, env.describe()   # ~/.cache/turnout/envs/3f2a…/bin/python, and where it came from

What is installed: `[project] dependencies`, the test extras (`test`, `tests`, `testing`,
`dev`) and dependency groups (PEP 735) of the same names, `requirements*.txt` files for tests
or development, tox.ini's `[testenv] deps`, and pytest when the tests are pytest's. A project whose dependencies are not
static (`dynamic`, or only a `setup.py`) is installed itself from a scratch copy of the
workspace (a build never writes into the workspace, whose diff is the patch). The workspace
still goes first on the path when the tests run, and `resolve_test_environment` proves its
code is what they import.

The environment is made with uv when it is there, else `venv` + pip, under the user's cache
folder (`$XDG_CACHE_HOME/turnout/envs/<hash>`), named by a hash of those declarations and
the Python version: the next run with the same declarations reuses it at once. Index
settings come from the usual variables (`UV_INDEX_URL`, `UV_FIND_LINKS`, `PIP_INDEX_URL`, …).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from pydantic import BaseModel

from turnout.errors import ConfigError
from turnout.tools._walk import skipped_dir
from turnout.tools.tox_config import read_tox

TEST_GROUPS = ("test", "tests", "testing", "dev")
_REQUIREMENT_FILES = ("requirements-test.txt", "requirements-tests.txt", "test-requirements.txt",
                      "requirements-dev.txt", "dev-requirements.txt", "requirements/test.txt", "requirements/tests.txt",
                      "requirements/dev.txt", "requirements.txt")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
INSTALL_TIMEOUT_S = 900
_READY = ".turnout-ready"


class Declarations(BaseModel):
    """What a project says it needs to run its tests."""

    requirements: list[str] = []
    install_project: list[str] | None = None  # the extras to install the project itself with, when needed
    sources: list[str] = []  # where each part was read, for the report

    def key(self, python_version: str) -> str:
        text = json.dumps([self.requirements, self.install_project, python_version], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class IsolatedEnvironment(BaseModel):
    python: str
    folder: str
    declarations: Declarations
    reused: bool

    def describe(self) -> str:
        made = "reused" if self.reused else "made for this run"
        return f"an isolated environment {made} from {', '.join(self.declarations.sources) or 'no declarations'}"


def _name(requirement: str) -> str:
    found = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", found[1]).lower() if found else ""


def _group(groups: dict[str, list[object]], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """A dependency group's requirements, `{include-group = …}` entries expanded."""
    found: list[str] = []
    for item in groups.get(name, []):
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict) and (included := item.get("include-group")) and included not in seen:
            found += _group(groups, included, seen | {name})
    return found


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):  # -r/-e/-c and options are left to a person
            lines.append(line)
    return lines


def declared(root: Path) -> Declarations:
    """The test dependencies `root` declares (see the module docstring)."""
    decl = Declarations()
    pyproject = root / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8")) if pyproject.is_file() else {}
    project = data.get("project", {})
    own = _name(project.get("name", "")) if project.get("name") else None
    extras = [g for g in TEST_GROUPS if g in project.get("optional-dependencies", {})]
    static = bool(project) and "dependencies" not in project.get("dynamic", [])
    if static:
        decl.requirements += project.get("dependencies", [])
        decl.sources.append("pyproject.toml [project] dependencies")
        for extra in extras:
            for requirement in project["optional-dependencies"][extra]:
                if own and _name(requirement) == own:  # `pkg[other]`: the project's own other extras
                    inner = re.search(r"\[([^\]]+)\]", requirement)
                    for other in (inner[1].split(",") if inner else []):
                        decl.requirements += project.get("optional-dependencies", {}).get(other.strip(), [])
                else:
                    decl.requirements.append(requirement)
        if extras:
            decl.sources.append(f"extras {', '.join(extras)}")
    elif project or (root / "setup.py").is_file() or (root / "setup.cfg").is_file():
        decl.install_project = extras
        decl.sources.append("the project itself" + (f" with extras {', '.join(extras)}" if extras else "")
                            + " (its dependencies are not static)")
    groups = data.get("dependency-groups", {})
    if names := [g for g in TEST_GROUPS if g in groups]:
        decl.requirements += [r for g in names for r in _group(groups, g) if not (own and _name(r) == own)]
        decl.sources.append(f"dependency groups {', '.join(names)}")
    for rel in _REQUIREMENT_FILES:
        if (root / rel).is_file() and (rel != "requirements.txt" or not static):
            decl.requirements += _requirement_lines(root / rel)
            decl.sources.append(rel)
    if (tox := read_tox(root)) and tox.deps:
        decl.requirements += tox.deps
        decl.sources.append("tox.ini [testenv] deps")
    decl.requirements = list(dict.fromkeys(decl.requirements))
    return decl


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "turnout" / "envs"


def _python_in(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _uv() -> list[str] | None:
    if found := shutil.which("uv"):
        return [found]
    if importlib.util.find_spec("uv") is not None:  # the PyPI package ships the binary
        return [sys.executable, "-m", "uv"]
    return None


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=cwd,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what} did not finish in {INSTALL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
        raise ConfigError(f"{what} failed (exit {done.returncode}): " + " | ".join(said))


def _build(folder: Path, decl: Declarations, workspace: Path) -> str:
    """Make the environment in `folder`; returns the tool used."""
    uv = _uv()
    python = str(_python_in(folder))
    if uv:
        _run([*uv, "venv", "--quiet", "--python", sys.executable, str(folder)], "uv venv")
        install = [*uv, "pip", "install", "--quiet", "--python", python]
    else:
        _run([sys.executable, "-m", "venv", str(folder)], "python -m venv")
        install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if decl.requirements:
        _run([*install, *decl.requirements], "installing " + ", ".join(decl.requirements[:6])
             + (" …" if len(decl.requirements) > 6 else ""))
    if decl.install_project is not None:
        with tempfile.TemporaryDirectory(prefix="turnout-build-") as scratch:
            copy = Path(scratch) / "project"
            shutil.copytree(workspace, copy, ignore=_not_copied)
            target = f"{copy}[{','.join(decl.install_project)}]" if decl.install_project else str(copy)
            _run([*install, target], "installing the project from a copy of the workspace")
    return "uv" if uv else "venv + pip"


def isolated_environment(workspace: Path, *, needs_pytest: bool) -> IsolatedEnvironment:
    """The cached environment for `workspace`'s declarations, made first if need be."""
    decl = declared(workspace)
    if needs_pytest and "pytest" not in {_name(r) for r in decl.requirements}:
        decl.requirements.append("pytest")
        decl.sources.append("pytest (to run the tests)")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = cache_folder() / decl.key(version)
    if (folder / _READY).is_file() and _python_in(folder).exists():
        return IsolatedEnvironment(python=str(_python_in(folder)), folder=str(folder), declarations=decl, reused=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        tool = _build(partial, decl, workspace)
    except ConfigError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ConfigError(
            f"could not make a test environment from {', '.join(decl.sources) or 'the project'}: {exc}. Make one "
            "with the project's test dependencies (e.g. a .venv in the repository) or pass --python with an "
            "interpreter that has them") from None
    (partial / _READY).write_text(json.dumps({"tool": tool, **decl.model_dump()}))
    try:
        partial.rename(folder)
    except OSError:  # another run finished the same environment first: use that one
        shutil.rmtree(partial, ignore_errors=True)
    if not _python_in(folder).exists():
        raise ConfigError(f"the test environment in {folder} has no interpreter; remove the folder and run again")
    return IsolatedEnvironment(python=str(_python_in(folder)), folder=str(folder), declarations=decl, reused=False)


def _not_copied(directory: str, names: list[str]) -> list[str]:
    """What the project copy an environment installs from leaves out: the folders no walk of
    a repository enters (build output stays: it is the project's to clean)."""
    return [name for name in names if skipped_dir(Path(directory), name, keep_build_output=True)]
