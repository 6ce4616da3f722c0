"""An isolated copy of the user's repository, where `turnout refactor` edits, tests and diffs.

    ws = Workspace.create(Path("."), run_id)   # copy of the tree as it is now, plus a baseline commit
    ...edit files under ws.path, run the tests there...
    ws.export_patch()                          # .turnout/patches/<run_id>.patch, for `git apply`
    ws.apply_to_repo()                         # only if the repository is as it was at the start

The user's repository must be byte-identical after any failed run, so nothing here writes to
it except `apply_to_repo` (all-or-nothing, and refused once the tree changed) and the
`.turnout/` folder. `git worktree` is not used because it writes into the user's `.git`; the
copy takes what `git ls-files -co --exclude-standard` lists (uncommitted and untracked work
included, ignored files left out), or for a directory without git every file but VCS
folders, virtualenvs and caches. The copy is its own git repository with one baseline
commit, so every diff is a plain `git diff`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

from pydantic import BaseModel

from turnout.errors import ConfigError, UserError
from turnout.telemetry._spans import traced_tool
from turnout.tools._repo_writes import WorkspaceError, replace_all
from turnout.tools._walk import skipped_dir

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Never a command from a repository's config, in the user's repository or a workspace (whose
# tests could have written its .git): no hooks, no fsmonitor daemon, no external diff.
GIT_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "diff.external=")
# Own git config only: a user's autocrlf, hooks, filters or signing must not alter the baseline.
_GIT_CONFIG = ("-c", "user.name=turnout", "-c", "user.email=turnout@localhost", "-c", "commit.gpgsign=false",
               "-c", "init.defaultBranch=turnout", "-c", "core.autocrlf=false")
_EXCLUDE = "/.turnout/\n__pycache__/\n.pytest_cache/\n"
_ATTRIBUTES = "* -text -eol -filter -ident -working-tree-encoding\n"
_RECORD = ".git/turnout-workspace.json"  # inside .git: never part of a diff


class _Record(BaseModel):
    """What `Workspace.open` needs to rebuild a workspace from its path alone."""

    repo: str
    run_id: str
    fingerprint: str
    patches_dir: str | None = None


class RepositoryChanged(UserError):
    """The user's repository changed while a run worked on its copy; the patch must be applied by hand."""


def _git_env(isolated: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # never refresh the user's index as a side effect
    if isolated:
        env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return env


def _git(cwd: Path, *args: str, isolated: bool = True, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(["git", *GIT_SAFE, *(_GIT_CONFIG if isolated else ()), *args], cwd=cwd, env=_git_env(isolated),
                              capture_output=True, stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise WorkspaceError("git is not on PATH; install git, which turnout needs for workspaces and "
                             "patches") from None
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise WorkspaceError(f"git {args[0]} failed in {cwd}: {message}")
    return done


def _link_target(repo: Path, rel: str) -> str | None:
    """The text for a copy of the symlink `rel`, relative to its folder; None when it leads out of `repo`."""
    link = repo / rel
    target = os.path.realpath(link)
    if not Path(target).is_relative_to(repo):
        return None
    text = os.readlink(link)
    return text if not os.path.isabs(text) else os.path.relpath(target, os.path.realpath(link.parent))


def _walk(repo: Path, top: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in dirnames:
            path = here / name
            if path.is_symlink():
                filenames.append(name)  # a link to a folder is copied as a link
            elif not skipped_dir(here, name, keep_build_output=True):
                keep.append(name)
        dirnames[:] = keep
        found.extend((here / name).relative_to(repo).as_posix() for name in filenames if name != ".git")
    return found


def _not_the_project(repo: Path) -> set[str]:
    """Top-level folders that are never part of the tree a run copies, fingerprints or calls
    uncommitted: turnout's own `.turnout/` and virtual environments (a `pyvenv.cfg` inside),
    even when git does not ignore them."""
    skipped = {".turnout"}
    with os.scandir(repo) as entries:
        skipped.update(e.name for e in entries if e.is_dir(follow_symlinks=False) and os.path.exists(
            os.path.join(e.path, "pyvenv.cfg")))
    return skipped


def _inside(rel: str, folders: set[str]) -> bool:
    return rel.split("/", 1)[0] in folders


def _listed(repo: Path) -> list[str]:
    inside_git = _git(repo, "rev-parse", "--is-inside-work-tree", isolated=False, check=False)
    if inside_git.returncode != 0 or inside_git.stdout.strip() != b"true":
        return _walk(repo, repo)
    out = _git(repo, "ls-files", "-z", "-c", "-o", "--exclude-standard", isolated=False).stdout
    skipped = _not_the_project(repo)
    files: list[str] = []
    for rel in dict.fromkeys(os.fsdecode(p).rstrip("/") for p in out.split(b"\0") if p):
        path = repo / rel
        if _inside(rel, skipped):
            continue
        if path.is_dir() and not path.is_symlink():  # a submodule, or a nested repository
            files.extend(_walk(repo, path))
        else:
            files.append(rel)
    return files


def uncommitted_changes(repo: Path) -> list[str]:
    """What `git status` reports as changed or untracked in `repo`, less what a run never
    copies (`.turnout/`, virtual environments); empty outside git."""
    repo = Path(repo)
    if not (repo / ".git").exists():
        return []
    out = _git(repo, "status", "--porcelain", "-z", isolated=False).stdout
    skipped = _not_the_project(repo)
    changed = []
    entries = iter(os.fsdecode(p) for p in out.split(b"\0") if p)
    for entry in entries:
        code, rel = entry[:2], entry[3:].rstrip("/")
        if code[0] in "RC":  # a rename or copy: the next entry is where it came from
            next(entries, None)
        if not _inside(rel, skipped):
            changed.append(rel)
    return changed


def _files(repo: Path) -> list[str]:
    """The tree a workspace copies and a fingerprint covers: sorted posix paths, files and inner links."""
    chosen = []
    for rel in _listed(repo):
        path = repo / rel
        if path.is_symlink():
            if _link_target(repo, rel) is not None:
                chosen.append(rel)
        elif path.is_file():  # also drops tracked files deleted from the working tree
            chosen.append(rel)
    return sorted(set(chosen))


def _content(repo: Path, rel: str) -> bytes:
    path = repo / rel
    if path.is_symlink():
        return b"symlink:" + os.fsencode(os.readlink(path))
    return path.read_bytes()


def _fingerprint(entries: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for rel, data in entries:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def tree_fingerprint(repo: Path) -> str:
    """sha256 over every (path, bytes) a workspace of `repo` would copy; `.turnout/` is left out."""
    root = _checked_repo(repo)
    try:
        return _fingerprint([(rel, _content(root, rel)) for rel in _files(root)])
    except OSError as exc:
        raise WorkspaceError(f"could not read {exc.filename}: {exc.strerror}; check its permissions") from exc


def _checked_repo(repo: Path) -> Path:
    given = Path(repo).expanduser()
    if not given.is_dir():
        raise ConfigError(f"repository {str(given)!r} is not a directory; pass the folder of the repository "
                          "to refactor")
    return given.resolve()


class Workspace:
    """A copy of `repo` (by default under `<repo>/.turnout/work/<run_id>/`) with a baseline commit to diff
    against. `create` makes one; `open` finds one again from its path (graph state keeps only that)."""

    def __init__(self, repo: Path, run_id: str, path: Path, fingerprint: str,
                 patches_dir: Path | None = None) -> None:
        self.repo, self.run_id, self.path, self.fingerprint = repo, run_id, path, fingerprint
        self._patches_dir = patches_dir

    @classmethod
    @traced_tool("workspace_create")
    def create(cls, repo: Path, run_id: str, *, base_dir: Path | None = None) -> Workspace:
        """Copy the repository as it is now (uncommitted and untracked work included) and commit a baseline.

        The copy goes to `<base_dir>/<run_id>`; `base_dir` defaults to `<repo>/.turnout/work`.
        """
        root = _checked_repo(repo)
        if not _RUN_ID.fullmatch(run_id):
            raise ConfigError(f"run id {run_id!r} cannot name a folder; use letters, digits, '.', '_' and '-'")
        path = (Path(base_dir).expanduser().resolve() if base_dir is not None else root / ".turnout" / "work") / run_id
        if path.is_relative_to(root) and not path.is_relative_to(root / ".turnout"):
            raise ConfigError(f"workspace folder {path} lies inside the repository it copies; put it under "
                              f"{root / '.turnout'} or outside the repository")
        if path.exists():
            raise ConfigError(f"workspace {path} already exists; pick another run id or remove that folder")
        path.mkdir(parents=True)
        try:
            fingerprint = _copy(root, path)
            _git(path, "init", "-q")
            (path / ".git" / "info").mkdir(exist_ok=True)
            (path / ".git" / "info" / "exclude").write_text(_EXCLUDE)
            (path / ".git" / "info" / "attributes").write_text(_ATTRIBUTES)
            _git(path, "add", "-A", "-f")  # tracked-but-ignored files are part of the baseline too
            _git(path, "commit", "-q", "--no-verify", "--allow-empty", "-m", f"turnout baseline for {run_id}")
            workspace = cls(root, run_id, path, fingerprint)
            workspace._save()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return workspace

    @classmethod
    def open(cls, path: Path, *, repo: Path | None = None) -> Workspace:
        """The workspace at `path`, as `create` left it (for steps that only kept its path)."""
        record_file = Path(path) / _RECORD
        try:
            record = _Record.model_validate_json(record_file.read_text())
        except (OSError, ValueError):
            raise ConfigError(f"{path} is not a turnout workspace (no readable {_RECORD}); pass the path that "
                              "Workspace.create returned") from None
        if repo is not None and _checked_repo(repo) != Path(record.repo):
            raise ConfigError(f"workspace {path} was copied from {record.repo}, not {repo}; open it without repo= "
                              "or with the repository it came from")
        return cls(Path(record.repo), record.run_id, Path(path).resolve(), record.fingerprint,
                   Path(record.patches_dir) if record.patches_dir else None)

    def _save(self) -> None:
        record = _Record(repo=str(self.repo), run_id=self.run_id, fingerprint=self.fingerprint,
                         patches_dir=str(self._patches_dir) if self._patches_dir else None)
        (self.path / _RECORD).write_text(record.model_dump_json())

    def _status(self) -> list[tuple[str, str]]:
        _git(self.path, "add", "-A")
        out = _git(self.path, "diff", "--cached", "--name-status", "--no-renames", "-z").stdout.split(b"\0")
        return [(out[i].decode(), os.fsdecode(out[i + 1])) for i in range(0, len(out) - 1, 2)]

    def changed_files(self) -> list[str]:
        """Posix paths added, modified or deleted since the baseline, sorted."""
        return sorted(rel for _, rel in self._status())

    def diff(self) -> str:
        """The unified diff (binary-safe) from the baseline to the workspace as it is now."""
        _git(self.path, "add", "-A")
        out = _git(self.path, "diff", "--cached", "--binary", "--no-renames", "--no-color", "--no-ext-diff").stdout
        return out.decode("utf-8", errors="surrogateescape")

    @traced_tool("workspace_export_patch")
    def export_patch(self, patches_dir: Path | None = None) -> Path:
        """Write the diff to `<repo>/.turnout/patches/<run_id>.patch` (or `patches_dir`); return its path."""
        directory = Path(patches_dir) if patches_dir is not None else self.repo / ".turnout" / "patches"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.run_id}.patch"
        target.write_bytes(self.diff().encode("utf-8", errors="surrogateescape"))
        if patches_dir is not None:  # a refused apply writes its patch there too
            self._patches_dir = directory.resolve()
            self._save()
        return target

    @traced_tool("workspace_apply")
    def apply_to_repo(self) -> list[str]:
        """Write the changed files into the repository, all or nothing; return their paths.

        Refused with `RepositoryChanged` when the repository is no longer the tree the run
        started from: the run's edits were checked against that tree, not the new one.
        """
        if tree_fingerprint(self.repo) != self.fingerprint:
            patch = self.export_patch(self._patches_dir)
            raise RepositoryChanged(f"the repository changed since the run began; apply the patch at {patch} "
                                    "by hand with git apply")
        changes = self._status()
        replace_all(self.repo, self.path, changes)
        self.fingerprint = tree_fingerprint(self.repo)
        self._save()
        return sorted(rel for _, rel in changes)

    @traced_tool("workspace_snapshot")
    def snapshot(self) -> str:
        """The workspace as it is now, as a git tree id, for `restore` after code that may write in it."""
        _git(self.path, "add", "-A")
        tree = _git(self.path, "write-tree").stdout.decode().strip()
        _git(self.path, "reset", "-q")
        return tree

    @traced_tool("workspace_restore")
    def restore(self, tree: str) -> list[str]:
        """Put the workspace back as it was at `snapshot`: files changed since are restored and
        files added are removed (ignored ones, which no diff holds, stay); return their paths."""
        _git(self.path, "add", "-A")
        out = _git(self.path, "diff", "--cached", "--name-only", "--no-renames", "-z", tree).stdout
        changed = sorted(os.fsdecode(p) for p in out.split(b"\0") if p)
        if changed:
            _git(self.path, "read-tree", "--reset", "-u", tree)
        _git(self.path, "reset", "-q")
        return changed

    @traced_tool("workspace_reset")
    def reset(self) -> None:
        """Undo every change since the baseline, so a new attempt starts from the untouched copy."""
        _git(self.path, "reset", "-q", "--hard")
        _git(self.path, "clean", "-q", "-f", "-d")

    @traced_tool("workspace_remove")
    def remove(self) -> None:
        """Delete the workspace folder (the exported patch, if any, stays)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _copy(root: Path, dest: Path) -> str:
    entries: list[tuple[str, bytes]] = []
    try:
        for rel in _files(root):
            src, target = root / rel, dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                link = _link_target(root, rel)
                assert link is not None  # _files keeps only links that stay inside
                os.symlink(link, target)
            else:
                shutil.copyfile(src, target)
                os.chmod(target, stat.S_IMODE(src.stat().st_mode) | stat.S_IWUSR)
            entries.append((rel, _content(root, rel)))
    except OSError as exc:
        raise WorkspaceError(f"could not copy {exc.filename}: {exc.strerror}; check its permissions") from exc
    return _fingerprint(entries)
