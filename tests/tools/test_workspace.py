"""Workspaces: an isolated copy of the repository, a patch out of it, and an all-or-nothing apply."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from turnout.errors import ConfigError, UserError
from turnout.tools import workspace as workspace_module
from turnout.tools.workspace import RepositoryChanged, Workspace, WorkspaceError, tree_fingerprint

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost",
                           "-c", "commit.gpgsign=false", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root but .turnout/, .git/ included: byte-for-byte proof nothing was touched."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".turnout") or not path.is_file() or path.is_symlink():
            continue
        found[rel] = path.read_bytes()
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repo with a commit, then an uncommitted edit, an untracked file and two ignored ones."""
    root = tmp_path / "repo"
    root.mkdir()
    write(root, {".gitignore": "*.log\nbuild/\n", "app.py": "def greet():\n    return 'hi'\n",
                 "run.sh": "#!/bin/sh\necho run\n", "docs/readme.md": "# docs\n", "logo.bin": b"\x00\x01\x02"})
    (root / "run.sh").chmod(0o755)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    write(root, {"app.py": "def greet():\n    return 'hello'\n", "new.py": "NEW = 1\n",
                 "debug.log": "noise\n", "build/out.txt": "artifact\n"})
    return root


def test_the_copy_has_uncommitted_and_untracked_files_but_no_ignored_ones(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    assert ws.path == repo / ".turnout" / "work" / "run1"
    assert (ws.path / "app.py").read_text() == "def greet():\n    return 'hello'\n"
    assert (ws.path / "new.py").read_text() == "NEW = 1\n"
    assert not (ws.path / "debug.log").exists()
    assert not (ws.path / "build").exists()


def test_the_copy_keeps_file_modes(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    assert os.access(ws.path / "run.sh", os.X_OK)
    assert not os.access(ws.path / "app.py", os.X_OK)


def test_a_fresh_workspace_has_no_changes(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    assert ws.changed_files() == []
    assert ws.diff() == ""


def test_edits_in_the_workspace_never_touch_the_repository(repo: Path) -> None:
    fingerprint, before = tree_fingerprint(repo), snapshot(repo)
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("def greet():\n    return 'changed'\n")
    (ws.path / "docs" / "readme.md").unlink()
    write(ws.path, {"added/mod.py": "X = 2\n"})
    ws.diff()
    ws.export_patch()
    assert tree_fingerprint(repo) == fingerprint
    assert snapshot(repo) == before


def test_changed_files_lists_modified_added_and_deleted_files(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("changed = True\n")
    (ws.path / "docs" / "readme.md").unlink()
    write(ws.path, {"added/mod.py": "X = 2\n"})
    assert ws.changed_files() == ["added/mod.py", "app.py", "docs/readme.md"]
    diff = ws.diff()
    assert "+changed = True" in diff and "deleted file mode" in diff and "new file mode" in diff


def test_tool_caches_inside_the_workspace_are_not_part_of_the_diff(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    write(ws.path, {".turnout/index/cache.json": "{}", "pkg/__pycache__/m.cpython-311.pyc": b"\0"})
    assert ws.changed_files() == []


def test_the_exported_patch_applies_with_git_apply_to_a_fresh_copy(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("def greet():\n    return 'patched'\n")
    (ws.path / "logo.bin").write_bytes(b"\x00\xff\x00binary")
    (ws.path / "new.py").unlink()
    write(ws.path, {"added/mod.py": "X = 2\n"})
    patch = ws.export_patch()
    assert patch == repo / ".turnout" / "patches" / "run1.patch"
    fresh = tmp_path / "fresh"
    shutil.copytree(repo, fresh, ignore=shutil.ignore_patterns(".turnout"))
    git(fresh, "apply", str(patch))
    for rel in ("app.py", "logo.bin", "added/mod.py"):
        assert (fresh / rel).read_bytes() == (ws.path / rel).read_bytes()
    assert not (fresh / "new.py").exists()


def test_export_patch_can_write_elsewhere(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("x = 1\n")
    patch = ws.export_patch(tmp_path / "out")
    assert patch == tmp_path / "out" / "run1.patch"
    assert "+x = 1" in patch.read_text()


def test_apply_to_repo_writes_modified_added_and_deleted_files(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("def greet():\n    return 'applied'\n")
    (ws.path / "docs" / "readme.md").unlink()
    write(ws.path, {"added/deep/mod.py": "X = 2\n"})
    assert ws.apply_to_repo() == ["added/deep/mod.py", "app.py", "docs/readme.md"]
    assert (repo / "app.py").read_text() == "def greet():\n    return 'applied'\n"
    assert (repo / "added" / "deep" / "mod.py").read_text() == "X = 2\n"
    assert not (repo / "docs").exists()
    assert (repo / "debug.log").read_text() == "noise\n"


def test_apply_to_repo_refuses_when_the_repository_changed(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("from_the_run = 1\n")
    (repo / "new.py").write_text("NEW = 'edited by the user meanwhile'\n")
    before = snapshot(repo)
    with pytest.raises(RepositoryChanged, match=r"changed since the run began; apply the patch at .*run1\.patch"):
        ws.apply_to_repo()
    assert isinstance(RepositoryChanged("x"), UserError)
    assert {k: v for k, v in snapshot(repo).items()} == before
    assert (repo / ".turnout" / "patches" / "run1.patch").is_file()


def test_apply_to_repo_is_all_or_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("first = 1\n")
    (ws.path / "new.py").write_text("second = 2\n")
    (ws.path / "docs" / "readme.md").unlink()
    write(ws.path, {"added/mod.py": "X = 2\n"})
    before, fingerprint = snapshot(repo), tree_fingerprint(repo)
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if str(src).endswith(".new") and Path(dst).name == "new.py":
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(workspace_module.os, "replace", failing_replace)
    with pytest.raises(WorkspaceError, match="left as it was"):
        ws.apply_to_repo()
    monkeypatch.undo()
    assert snapshot(repo) == before
    assert tree_fingerprint(repo) == fingerprint
    assert not (repo / "added").exists()
    assert not [p for p in repo.rglob("*.turnout-*")]


def test_a_directory_without_git_is_copied_without_vcs_folders_virtualenvs_and_caches(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, {"src/app.py": "A = 1\n", ".hg/store": "x", ".venv/pyvenv.cfg": "", "env2/pyvenv.cfg": "",
                 "env2/lib/site.py": "", "node_modules/m/index.js": "", "src/__pycache__/app.pyc": b"\0",
                 ".tox/log": "", ".mypy_cache/x": "", ".pytest_cache/x": "", "pkg.egg-info/PKG-INFO": "",
                 ".git/config": "not a repo"})
    ws = Workspace.create(root, "run1")
    files = sorted(p.relative_to(ws.path).as_posix() for p in ws.path.rglob("*")
                   if p.is_file() and ".git" not in p.relative_to(ws.path).parts)
    assert files == ["src/app.py"]
    (ws.path / "src" / "app.py").write_text("A = 2\n")
    assert ws.changed_files() == ["src/app.py"]
    assert ws.apply_to_repo() == ["src/app.py"]
    assert (root / "src" / "app.py").read_text() == "A = 2\n"


def test_symlinks_inside_the_repository_are_kept_and_those_leading_out_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, {"app.py": "A = 1\n"})
    (tmp_path / "secret.txt").write_text("private")
    (root / "alias.py").symlink_to("app.py")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    ws = Workspace.create(root, "run1")
    assert os.readlink(ws.path / "alias.py") == "app.py"
    assert not (ws.path / "escape.txt").exists() and not (ws.path / "escape.txt").is_symlink()


def test_the_fingerprint_ignores_the_turnout_folder(repo: Path) -> None:
    fingerprint = tree_fingerprint(repo)
    write(repo, {".turnout/traces/run.jsonl": "{}\n"})
    assert tree_fingerprint(repo) == fingerprint
    (repo / "new.py").write_text("NEW = 2\n")
    assert tree_fingerprint(repo) != fingerprint


def test_remove_deletes_the_workspace(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    ws.remove()
    assert not ws.path.exists()


def test_a_repository_that_is_not_a_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        Workspace.create(tmp_path / "file.txt", "run1")
    with pytest.raises(ConfigError, match="not a directory"):
        Workspace.create(tmp_path / "missing", "run1")


def test_a_run_id_that_cannot_name_a_folder_is_a_config_error(repo: Path) -> None:
    with pytest.raises(ConfigError, match="run id"):
        Workspace.create(repo, "../escape")


def test_apply_to_repo_never_overwrites_an_ignored_file_the_copy_left_out(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("changed = 1\n")
    write(ws.path, {"debug.log": "from the run\n"})
    (ws.path / ".gitignore").write_text("build/\n")
    before = snapshot(repo)
    with pytest.raises(WorkspaceError, match="debug.log already exists in the repository"):
        ws.apply_to_repo()
    assert snapshot(repo) == before


def test_a_workspace_can_live_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.create(repo, "run1", base_dir=tmp_path / "runs")
    assert ws.path == tmp_path / "runs" / "run1"
    assert (ws.path / "new.py").is_file()


def test_a_workspace_folder_inside_the_repository_but_outside_turnout_is_refused(repo: Path) -> None:
    with pytest.raises(ConfigError, match="lies inside the repository it copies"):
        Workspace.create(repo, "run1", base_dir=repo / "work")
    assert not (repo / "work").exists()


def test_open_rebuilds_a_workspace_from_its_path(repo: Path, tmp_path: Path) -> None:
    created = Workspace.create(repo, "run1", base_dir=tmp_path / "runs")
    (created.path / "app.py").write_text("reopened = 1\n")
    ws = Workspace.open(created.path, repo=repo)
    assert (ws.repo, ws.run_id, ws.path, ws.fingerprint) == (repo, "run1", created.path, created.fingerprint)
    assert ws.apply_to_repo() == ["app.py"]
    assert (repo / "app.py").read_text() == "reopened = 1\n"


def test_open_refuses_a_folder_that_is_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a turnout workspace"):
        Workspace.open(tmp_path)


def test_a_refused_apply_points_at_the_patch_where_patches_were_exported(repo: Path, tmp_path: Path) -> None:
    ws = Workspace.create(repo, "run1", base_dir=tmp_path / "runs")
    (ws.path / "app.py").write_text("from_the_run = 1\n")
    ws.export_patch(tmp_path / "patches")
    (repo / "new.py").write_text("NEW = 'meanwhile'\n")
    with pytest.raises(RepositoryChanged, match=str(tmp_path / "patches" / "run1.patch")):
        Workspace.open(ws.path).apply_to_repo()


def test_reset_returns_the_workspace_to_its_baseline(repo: Path) -> None:
    ws = Workspace.create(repo, "run1")
    (ws.path / "app.py").write_text("broken attempt\n")
    (ws.path / "docs" / "readme.md").unlink()
    write(ws.path, {"added/mod.py": "X = 2\n"})
    ws.reset()
    assert ws.changed_files() == []
    assert (ws.path / "app.py").read_bytes() == (repo / "app.py").read_bytes()
    assert not (ws.path / "added").exists()


def test_turnouts_folder_and_untracked_virtual_environments_are_neither_copied_nor_uncommitted(tmp_path: Path) -> None:
    from turnout.tools.workspace import uncommitted_changes

    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("X = 1\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"],
                   check=True)
    (repo / "env" / "lib").mkdir(parents=True)
    (repo / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / "env" / "lib" / "big.py").write_text("# an installed package\n")
    (repo / ".turnout" / "patches").mkdir(parents=True)
    (repo / ".turnout" / "patches" / "x.patch").write_text("diff\n")
    assert uncommitted_changes(repo) == []
    ws = Workspace.create(repo, "run1", base_dir=tmp_path / "work")
    assert not (ws.path / "env").exists() and not (ws.path / ".turnout").exists()
    (repo / "pkg" / "mod.py").write_text("X = 2\n")
    (repo / "notes.txt").write_text("new\n")
    assert sorted(uncommitted_changes(repo)) == ["notes.txt", "pkg/mod.py"]


def test_a_repositorys_fsmonitor_and_hooks_never_run_from_turnouts_git(tmp_path: Path) -> None:
    """A `core.fsmonitor` command in the repository's .git/config ran on every `git status`
    turnout made, even with `--test-cmd true`; hooks are the same kind of trap."""
    repo = tmp_path / "repo"
    write(repo, {"a.py": "x = 1\n"})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    marker = tmp_path / "ran"
    git(repo, "config", "core.fsmonitor", f"touch {marker}; echo")
    hooks = repo / ".git" / "hooks"
    for hook in ("pre-commit", "post-commit", "post-checkout", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, check=False)
    assert marker.exists()  # git itself runs it: the trap is real
    marker.unlink()
    assert workspace_module.uncommitted_changes(repo) == []
    ws = Workspace.create(repo, "fsmonitor", base_dir=tmp_path / "work")
    (ws.path / "a.py").write_text("x = 2\n")
    before = ws.snapshot()
    ws.restore(before)
    ws.export_patch(tmp_path / "patches")
    assert ws.apply_to_repo() == ["a.py"]
    assert not marker.exists()
