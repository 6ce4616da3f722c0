"""A small git repository with a tested package, for refactoring runs (the `repo` fixture).

The fixture checks on the way out that the repository is byte-identical to how it began;
tests that change it on purpose (`--apply`) take `repo_that_may_change` instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnout.tools.workspace import tree_fingerprint

PACKAGE = {
    "shop/__init__.py": 'from shop.inventory import load_inventory\n\n__all__ = ["load_inventory"]\n',
    "shop/inventory.py": (
        "def load_inventory(path):\n"
        '    """Read stock counts from a text file."""\n'
        "    return dict(line.split('=') for line in open(path).read().split())\n\n\n"
        "def total(path):\n    return sum(int(v) for v in load_inventory(path).values())\n"
    ),
    "tests/test_inventory.py": (
        "from shop import load_inventory\nfrom shop.inventory import total\n\n\n"
        "def test_load(tmp_path):\n    p = tmp_path / 's.txt'\n    p.write_text('a=1 b=2')\n"
        "    assert load_inventory(p) == {'a': '1', 'b': '2'}\n\n\n"
        "def test_total(tmp_path):\n    p = tmp_path / 's.txt'\n    p.write_text('a=1 b=2')\n    assert total(p) == 3\n"
    ),
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    "README.md": "Call `load_inventory(path)` to read the stock file.\n",
}


def rename(symbol: str = "load_inventory", new: str = "read_inventory") -> dict[str, Any]:
    return {"operation": "rename", "symbol": symbol, "new_name": new, "target_module": None}


def edit_plan(symbol: str = "total") -> dict[str, Any]:
    return {"operation": "edit", "symbol": symbol, "new_name": None, "target_module": None}


def code(body: str) -> dict[str, Any]:
    return {"edits": [{"path": "shop/inventory.py", "symbol": "total", "code": body}], "explanation": "x"}


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def make_repo(tmp_path: Path) -> Path:
    root = write_files(tmp_path / "user_repo", PACKAGE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    root = make_repo(tmp_path)
    before = tree_fingerprint(root)
    yield root
    assert tree_fingerprint(root) == before, "the user's repository changed"


@pytest.fixture
def repo_that_may_change(tmp_path: Path) -> Path:
    return make_repo(tmp_path)
