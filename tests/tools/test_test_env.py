"""Which interpreter runs a repository's tests, and the proof that it imports the workspace copy."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from turnout.errors import ConfigError
from turnout.tools.sandbox import Sandbox, bubblewrap_problem
from turnout.tools.test_env import WorkspaceNotTested, find_interpreter, resolve_test_environment, top_level_packages
from turnout.tools.test_runner import run_tests


def _fake_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


def _project(root: Path, where: str) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "__init__.py").write_text(f"WHERE = {where!r}\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_where.py").write_text("import pkg\n\ndef test_where():\n    assert pkg.WHERE == 'workspace'\n")
    return root


def test_the_repositorys_own_venv_is_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    python = _fake_venv(tmp_path / ".venv")
    assert find_interpreter(tmp_path) == (str(python), "the repository's own .venv/")


def test_an_active_virtual_env_that_is_not_turnouts_own_is_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = _fake_venv(tmp_path / "their-env")
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "their-env"))
    assert find_interpreter(tmp_path / "repo") == (str(python), "the active VIRTUAL_ENV")
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    python_used, why = find_interpreter(tmp_path / "repo", fallback="turnout")
    assert python_used == sys.executable and why.startswith("turnout's own Python") and "--python" in why


def test_a_named_interpreter_wins_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    _fake_venv(tmp_path / ".venv")
    assert find_interpreter(tmp_path, sys.executable)[0] == sys.executable
    with pytest.raises(ConfigError, match=r"'/nowhere/python' does not exist; pass --python"):
        find_interpreter(tmp_path, "/nowhere/python")


def test_top_level_packages_come_from_src_or_the_root(tmp_path: Path) -> None:
    _project(tmp_path / "src-layout", "x")
    assert top_level_packages(tmp_path / "src-layout") == (tmp_path / "src-layout" / "src", ["pkg"])
    flat = tmp_path / "flat"
    for name in ("shop", "tests", "docs"):
        (flat / name).mkdir(parents=True)
        (flat / name / "__init__.py").write_text("")
    assert top_level_packages(flat) == (flat, ["shop"])


async def test_an_editable_install_of_the_users_tree_is_not_what_the_tests_import(tmp_path: Path) -> None:
    """The trap: the repo's venv has the project installed editable (a .pth to the user's src);
    the tests in the copy would import the user's files. The workspace's src goes first."""
    repo = _project(tmp_path / "repo", "original")
    workspace = _project(tmp_path / "workspace", "workspace")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = repo / ".venv" / "lib" / version / "site-packages"
    (site / "_pkg_editable.pth").write_text(str(repo / "src") + "\n")
    # The venv sees turnout's pytest the way a project's own venv would see its own.
    (site / "_pytest_from_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    unguarded = await run_tests(workspace, python=str(repo / ".venv" / "bin" / "python"), sandbox=Sandbox(kind="none"))
    assert unguarded.failed == 1  # the copy's tests ran against the user's original file
    if bubblewrap_problem() is None:  # sandboxed, the user's tree is not there to import at all
        hidden = await run_tests(workspace, python=str(repo / ".venv" / "bin" / "python"),
                                 sandbox=Sandbox(kind="bubblewrap", hidden=[str(repo)]))
        assert hidden.errors == 1 and "No module named 'pkg'" in hidden.output_tail

    env = await resolve_test_environment(repo, workspace)
    assert env.chosen_by == "the repository's own .venv/"
    assert env.pythonpath == [str(workspace / "src")]
    assert env.describe().endswith("(the repository's own .venv/; the workspace's src/ first on the path)")
    assert Path(env.checked["pkg"]).is_relative_to(workspace)
    guarded = await run_tests(workspace, python=env.python, pythonpath=env.pythonpath)
    assert guarded.ok and guarded.passed == 1


async def test_a_project_that_cannot_be_imported_from_the_workspace_stops_the_run(tmp_path: Path) -> None:
    workspace = _project(tmp_path / "workspace", "workspace")
    (workspace / "src" / "pkg" / "__init__.py").write_text("import a_dependency_nobody_installed\n")
    with pytest.raises(WorkspaceNotTested, match=r"pkg from error: ModuleNotFoundError.*Pass --python"):
        await resolve_test_environment(tmp_path / "repo", workspace, sys.executable)
