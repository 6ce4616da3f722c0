"""One walk of a repository: every tool leaves out the same folders (`tools/_walk.py`), so the
code index, the codemods, test detection and the workspace copy cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.tools import CodeIndex, Workspace
from turnout.tools._codemod_files import python_files
from turnout.tools._walk import BUILD_DIRS, NOT_PROJECT_DIRS
from turnout.tools.test_runner import _has_test_files

NEVER = sorted(NOT_PROJECT_DIRS - {".git"}) + ["shop.egg-info", "my-env"]  # my-env: a venv by its pyvenv.cfg


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "inventory.py").write_text("def load_inventory(path):\n    return path\n")
    for folder in [*NEVER, *BUILD_DIRS]:
        (root / folder).mkdir()
        (root / folder / "test_hidden.py").write_text("def hidden_helper():\n    return 1\n")
        (root / folder / "SOURCES.txt").write_text("hidden_helper\n")
    (root / "my-env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root  # not a git repository: in one, the workspace copies what git lists (see workspace.py)


def test_the_index_codemods_and_test_detection_skip_the_same_folders(repo: Path) -> None:
    assert CodeIndex.build(repo).files == ["shop/inventory.py"]
    assert python_files(repo) == ["shop/inventory.py"]
    assert not _has_test_files(repo)


def test_the_workspace_copy_skips_them_too_but_keeps_build_output(repo: Path, tmp_path: Path) -> None:
    copied = Workspace.create(repo, "w-1", base_dir=tmp_path / "work").path
    assert not [folder for folder in NEVER if (copied / folder).exists()]
    assert all((copied / folder / "test_hidden.py").exists() for folder in BUILD_DIRS)
