"""Isolated test environments made from a project's declarations: what is read, that the
environment is made (offline, from a local wheelhouse) and reused, that the repository's
tests then run with it, and that a failure says what to do."""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from turnout.errors import ConfigError
from turnout.tools.isolated_env import declared, isolated_environment
from turnout.tools.test_env import resolve_test_environment
from turnout.tools.test_runner import run_tests


def _wheel(folder: Path, name: str, body: str) -> Path:
    """A minimal pure-Python wheel (no build tools, no index)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"{name}/__init__.py": body,
             f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-1.0.dist-info/RECORD,,")
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def offline_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """uv and pip install only from a local wheelhouse, into a cache under tmp_path."""
    wheelhouse = tmp_path / "wheelhouse"
    _wheel(wheelhouse, "tinydep", "VALUE = 42\n")
    for name, value in {"UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
                        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse),
                        "XDG_CACHE_HOME": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    return wheelhouse


def _project(root: Path, dependencies: str = '["tinydep"]') -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("import tinydep\n\nANSWER = tinydep.VALUE\n")
    (root / "pyproject.toml").write_text(f'[project]\nname = "pkg"\nversion = "1"\ndependencies = {dependencies}\n')
    return root


def test_declarations_are_read_from_every_place_a_project_puts_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "my-pkg"\nversion = "1"\ndependencies = ["attrs>=23"]\n'
        '[project.optional-dependencies]\ntest = ["hypothesis", "my_pkg[speed]"]\nspeed = ["orjson"]\ndocs = ["sphinx"]\n'
        '[dependency-groups]\ndev = ["ruff", {include-group = "lint"}]\nlint = ["mypy"]\n')
    (tmp_path / "requirements-test.txt").write_text("# comment\ncoverage  # inline\n-r other.txt\n")
    found = declared(tmp_path)
    assert found.requirements == ["attrs>=23", "hypothesis", "orjson", "ruff", "mypy", "coverage"]
    assert found.install_project is None
    assert found.sources == ["pyproject.toml [project] dependencies", "extras test", "dependency groups dev",
                             "requirements-test.txt"]


def test_tox_deps_are_declarations_too(tmp_path: Path) -> None:
    (tmp_path / "tox.ini").write_text("[testenv]\ndeps =\n    pytest\n    cjkwrap  # wide characters\n    -rrequirements.txt\n"
                                      "    {env:EXTRA:}\n    pytestmain: git+https://github.com/pytest-dev/pytest.git@main\n"
                                      "commands = pytest\n")  # pluggy 1.5.0: a dependency of its `pytestmain` environment only
    found = declared(tmp_path)
    assert found.requirements == ["pytest", "cjkwrap"] and found.sources == ["tox.ini [testenv] deps"]


def test_a_project_without_static_dependencies_is_installed_itself(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='old')\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    found = declared(tmp_path)
    assert found.install_project == [] and found.requirements == ["six"]
    assert found.sources[0] == "the project itself (its dependencies are not static)"


def test_an_environment_is_made_once_and_reused(tmp_path: Path, offline_index: Path) -> None:
    project = _project(tmp_path / "project")
    made = isolated_environment(project, needs_pytest=False)
    assert not made.reused and Path(made.python).is_relative_to(tmp_path / "cache" / "turnout" / "envs")
    assert made.describe() == ("an isolated environment made for this run from pyproject.toml [project] "
                               "dependencies")
    again = isolated_environment(project, needs_pytest=False)
    assert again.reused and again.python == made.python
    (project / "pyproject.toml").write_text('[project]\nname = "pkg"\nversion = "1"\ndependencies = []\n')
    assert isolated_environment(project, needs_pytest=False).python != made.python  # other declarations


async def test_the_repositorys_tests_run_with_the_environment_made_for_them(tmp_path: Path, offline_index: Path) -> None:
    repo = _project(tmp_path / "repo")
    workspace = _project(tmp_path / "workspace")
    env = await resolve_test_environment(repo, workspace, needs_pytest=False)
    assert env.chosen_by.startswith("an isolated environment made for this run") and env.python != sys.executable
    assert Path(env.checked["pkg"]).is_relative_to(workspace)
    report = await run_tests(workspace, "python -c 'import pkg, sys; print(pkg.ANSWER, sys.prefix)'",
                             python=env.python, pythonpath=env.pythonpath)
    assert report.exit_code == 0 and f"42 {Path(env.python).parent.parent}" in report.output_tail


def test_an_environment_that_cannot_be_made_says_what_to_do(tmp_path: Path, offline_index: Path) -> None:
    project = _project(tmp_path / "project", '["not-in-the-wheelhouse"]')
    with pytest.raises(ConfigError) as caught:
        isolated_environment(project, needs_pytest=False)
    message = str(caught.value)
    assert message.startswith("could not make a test environment from pyproject.toml [project] dependencies: ")
    assert "not-in-the-wheelhouse" in message and "pass --python" in message
    assert not list((tmp_path / "cache" / "turnout" / "envs").iterdir())  # nothing half made is kept
