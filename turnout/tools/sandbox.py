"""Where a repository's own code runs: its tests, and the probes that import it.

    sandbox = Sandbox.resolve("auto", hide=[repo], pass_env=["DATABASE_URL"])
    argv, env = sandbox.process([python, "-m", "pytest"], root=workspace, python=python)

A refactoring run executes the repository's code (its tests, its `conftest.py`, the modules
its checks import). With bubblewrap (`bwrap`, Linux; Debian's `bubblewrap`), that code runs
in its own namespaces:

- the filesystem is read-only but for the workspace (its `.git` read-only too), and a
  private `/tmp` and empty home that vanish with the run; the user's repository (the
  original tree) is an empty read-only folder and the user's home is not mounted: only the
  interpreter's own folders are shown again, read-only;
- no network (a private loopback only), a fresh `/proc` (no other process to read, so no
  parent's environment), no shared IPC;
- an environment built from an allowlist (`ALLOWED_ENV`: PATH, locale, terminal, time
  zone, user name), so no credential of any name reaches it; `pass_env` adds named ones.

Without bubblewrap (not Linux, not installed, or user namespaces disabled), `auto` runs the
code as the user, still with the allowlisted environment, and the sandbox says so
(`describe()`), on the run's first line and in its report; `bubblewrap` then refuses to run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from turnout.errors import ConfigError

SandboxMode = Literal["auto", "bubblewrap", "off"]

ALLOWED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "COLUMNS", "LINES",
               "NO_COLOR", "FORCE_COLOR", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONWARNINGS",
               "PYTEST_ADDOPTS", "SOURCE_DATE_EPOCH", "CI", "LD_LIBRARY_PATH")
_ALLOWED_PREFIXES = ("LC_",)


class Sandbox(BaseModel):
    """How a repository's code is run: `bubblewrap`, or `none` with the reason."""

    kind: Literal["bubblewrap", "none"]
    reason: str = ""  # for `none`: why there is no sandbox
    hidden: list[str] = []  # folders the code must not see (the user's repository)
    pass_env: list[str] = []  # variables passed in on the user's say-so (--pass-env)

    @classmethod
    def resolve(cls, mode: SandboxMode = "auto", *, hide: Sequence[Path] = (), pass_env: Sequence[str] = ()) -> Sandbox:
        """The sandbox `mode` asks for on this machine; ConfigError when `bubblewrap` is asked
        for and cannot run here."""
        hidden = [str(Path(path).resolve()) for path in hide]
        passed = list(dict.fromkeys(pass_env))
        if mode == "off":
            return cls(kind="none", reason="turned off (--sandbox off or [refactor] sandbox = \"off\")",
                       hidden=hidden, pass_env=passed)
        problem = bubblewrap_problem()
        if problem is None:
            return cls(kind="bubblewrap", hidden=hidden, pass_env=passed)
        if mode == "bubblewrap":
            raise ConfigError(f"--sandbox bubblewrap was asked for, but {problem}; install bubblewrap (Debian/Ubuntu: "
                              "apt install bubblewrap) or pass --sandbox auto to run unsandboxed")
        return cls(kind="none", reason=problem, hidden=hidden, pass_env=passed)

    def describe(self) -> str:
        """One line for a person: what the repository's code can and cannot reach."""
        passed = f"; passed in: {', '.join(self.pass_env)}" if self.pass_env else ""
        if self.kind == "bubblewrap":
            return ("sandboxed with bubblewrap: only the workspace is writable (and a private /tmp and home that "
                    f"vanish), your repository and home are not mounted, no network, no credentials{passed}")
        return (f"NOT sandboxed ({self.reason}): the repository's tests run as you, and can read your files and "
                f"use the network; only the environment is filtered{passed}")

    def environment(self, pythonpath: Sequence[str] = (), python: str | None = None) -> dict[str, str]:
        """The environment the code gets: the allowlist, `pass_env`, no bytecode writes;
        `pythonpath` ahead of PYTHONPATH (the workspace's code, not an editable install's);
        with `python`, its folder first on PATH (its virtual environment activated), so
        `python`, `pytest`, `tox` or `make test` find that one."""
        env = {name: value for name, value in os.environ.items()
               if name in ALLOWED_ENV or name.startswith(_ALLOWED_PREFIXES) or name in self.pass_env}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if python:
            folder = Path(python).parent
            env["PATH"] = os.pathsep.join([str(folder), *filter(None, [env.get("PATH")])])
            if (folder.parent / "pyvenv.cfg").is_file():
                env["VIRTUAL_ENV"] = str(folder.parent)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
        return env

    def process(self, argv: Sequence[str], *, root: Path, python: str | None = None,
                pythonpath: Sequence[str] = (), writable: Sequence[Path] = ()) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) to start `argv` in `root` under this sandbox. `writable`:
        folders besides `root` the code may write (a scratch folder for a report).
        FileNotFoundError when the program is not on the PATH the code gets, as starting it
        unsandboxed would raise."""
        env = self.environment(pythonpath, python)
        program = argv[0]
        if shutil.which(program, path=env.get("PATH")) is None and not (os.sep in program and os.access(program, os.X_OK)):
            raise FileNotFoundError(2, "No such file or directory", program)
        if self.kind == "none":
            return list(argv), env
        return [*self._bubblewrap(Path(root), python, writable, env), "--", *argv], {}

    def _bubblewrap(self, root: Path, python: str | None, writable: Sequence[Path], env: dict[str, str]) -> list[str]:
        root = root.resolve()
        home = Path(os.path.expanduser("~")).resolve()
        command = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                   "--proc", "/proc", "--tmpfs", "/tmp"]
        hidden = [path for path in dict.fromkeys([home, *(Path(p) for p in self.hidden)])
                  if path != Path("/") and path.is_dir()]
        for folder in hidden:  # empty: home becomes private scratch space, like /tmp
            command += ["--tmpfs", str(folder)]
        for shown in _interpreter_folders(python, hidden):
            command += ["--ro-bind", str(shown), str(shown)]
        command += ["--bind", str(root), str(root)]
        if (root / ".git").is_dir():  # the baseline and turnout's git config stay turnout's
            command += ["--ro-bind", str(root / ".git"), str(root / ".git")]
        for folder in writable:
            command += ["--bind", str(Path(folder).resolve()), str(Path(folder).resolve())]
        for folder in hidden[1:]:  # the user's repository: not even scratch space (the workspace inside stays writable)
            command += ["--remount-ro", str(folder)]
        command += ["--chdir", str(root), "--clearenv"]
        for name, value in env.items():
            command += ["--setenv", name, value]
        return command


def _interpreter_folders(python: str | None, hidden: Sequence[Path]) -> list[Path]:
    """What an interpreter needs shown again under a hidden home, read-only: its environment's
    prefix, the base installation a virtual environment points at, and the folders their
    `.pth` files add (never one inside the user's repository). A prefix that holds a hidden
    folder (a python in `~/bin`) is shown only in an installation's parts (bin, lib, …); a
    lone link to an interpreter beside hidden files, as the file itself."""
    executable = Path(python or sys.executable)
    candidates = [executable, executable.resolve()]
    config = executable.parent.parent / "pyvenv.cfg"
    if config.is_file():
        for line in config.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                candidates.append(Path(value.strip()).resolve() / "python")
    prefixes = [program.parent.parent if program.parent.name in ("bin", "Scripts") else program.parent
                for program in candidates]
    folders: list[Path] = []
    for prefix in prefixes:
        if any(Path(h).is_relative_to(prefix) for h in hidden):
            folders += [prefix / part for part in ("bin", "lib", "lib64", "include", "share")]
        else:
            folders.append(prefix)
    folders += [entry for entry in _path_file_entries(prefixes) if not any(entry.resolve().is_relative_to(h) for h in hidden)]
    # Both spellings: a `.venv` that is a link elsewhere must still be there at its own path.
    spelled = [spelling for f in folders for spelling in (f.absolute(), f.resolve())]
    shown = [folder for folder in dict.fromkeys(spelled)
             if folder != Path("/") and folder.is_dir() and not any(Path(h).is_relative_to(folder) for h in hidden)]
    if not any(executable.absolute().is_relative_to(folder) for folder in shown):
        shown.append(executable.absolute())  # a lone link to an interpreter, beside hidden files: itself only
    return shown


def _path_file_entries(prefixes: Sequence[Path]) -> list[Path]:
    """Folders the environments' `.pth` files put on the import path (an editable install of
    a sibling project, another environment's site-packages); those inside the user's
    repository are dropped by the caller, which is the point of hiding it."""
    entries: list[Path] = []
    for prefix in prefixes:
        for site in [*prefix.glob("lib/python*/site-packages"), *prefix.glob("lib64/python*/site-packages")]:
            for pth in site.glob("*.pth"):
                for line in pth.read_text(errors="replace").splitlines():
                    line = line.strip()
                    if line and not line.startswith(("#", "import ", "import\t")) and os.path.isabs(line):
                        entries.append(Path(line))
    return entries


@functools.cache
def bubblewrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here, or None when it can (tried once per process)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap runs on Linux only, and this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        tried = subprocess.run(["bwrap", "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
                                "--dev", "/dev", "true"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be started ({exc})"
    if tried.returncode != 0:
        return f"bubblewrap cannot make namespaces here ({tried.stderr.strip()[:200] or tried.returncode})"
    return None
