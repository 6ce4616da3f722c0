"""A repository's tests run in a sandbox: a hostile `conftest.py` tries what a real one did
(read the parent's environment through /proc, find the user's tree through the workspace
record and write into it, write into home, reach the network) and gets nothing.

CI installs bubblewrap and sets TURNOUT_REQUIRE_BUBBLEWRAP=1, so there a missing sandbox is a
failure, not a skip."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.refactor_repo import make_repo
from turnout.errors import ConfigError
from turnout.tools.sandbox import ALLOWED_ENV, Sandbox, bubblewrap_problem
from turnout.tools.test_runner import TestReport, run_tests
from turnout.tools.workspace import Workspace, tree_fingerprint

SECRETS = {
    "OPENAI_API_KEY": "sk-proj-" + "o" * 40,
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "a" * 40,
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB_PAT": "ghp_" + "g" * 36,
    "DATABASE_URL": "postgresql://app:hunter2-db-pw@db.internal/prod",
    "NPM_AUTH": "npm-auth-0123456789abcdef",
    "SSH_AUTH_SOCK": "/run/user/1000/ssh-agent.sock-secret",
}

HOSTILE_CONFTEST = '''
import json, os, pathlib, socket, uuid

def pytest_sessionstart(session):
    found = {"environ": dict(os.environ), "proc": "", "wrote": {}, "connected": None, "tmp": None}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found["proc"] += (entry / "environ").read_bytes().decode(errors="replace")
            except OSError:
                pass
    record = json.loads(pathlib.Path(".git/turnout-workspace.json").read_text())
    original = pathlib.Path(record["repo"])
    targets = [original / "shop" / "inventory.py", original / "planted.py",
               pathlib.Path(os.path.expanduser("~")) / "planted.txt", pathlib.Path(os.environ.get("TARGET_HOME", "/nonexistent")) / "planted.txt"]
    for target in targets:
        try:
            with open(target, "a") as handle:
                handle.write("# planted\\n")
            found["wrote"][str(target)] = "written"
        except OSError as exc:
            found["wrote"][str(target)] = type(exc).__name__
    try:
        socket.create_connection(("127.0.0.1", int(os.environ.get("LISTENING_PORT", "9"))), timeout=2).close()
        found["connected"] = "connected"
    except OSError as exc:
        found["connected"] = type(exc).__name__
    scratch = pathlib.Path("/tmp") / ("planted-" + uuid.uuid4().hex)
    scratch.write_text("x")
    found["tmp"] = str(scratch)
    pathlib.Path("found.json").write_text(json.dumps(found))
'''


def needs_bubblewrap() -> None:
    if (problem := bubblewrap_problem()) is not None:
        if os.environ.get("TURNOUT_REQUIRE_BUBBLEWRAP") == "1":
            pytest.fail(f"bubblewrap is required here but cannot run: {problem}")
        pytest.skip(f"no sandbox here: {problem}")


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listening: int) -> tuple[Path, Workspace]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TARGET_HOME", str(home))
    monkeypatch.setenv("LISTENING_PORT", str(listening))
    repo = make_repo(tmp_path)
    (repo / "conftest.py").write_text(HOSTILE_CONFTEST)
    workspace = Workspace.create(repo, "hostile", base_dir=tmp_path / "work")
    return repo, workspace


_RUN_IN_A_CHILD = """
import asyncio, json, sys
from pathlib import Path
from turnout.tools.sandbox import Sandbox
from turnout.tools.test_runner import TestReport, run_tests
report = asyncio.run(run_tests(Path(sys.argv[1]), sandbox=Sandbox.model_validate_json(sys.argv[2])))
print(report.model_dump_json())
"""


def _tests_run_by_a_turnout_holding_secrets(workspace: Workspace, sandbox: Sandbox) -> dict[str, Any]:
    """Run the tests from a separate turnout process started with the secrets in its real
    environment (what /proc/<pid>/environ shows), and return what the conftest found."""
    done = subprocess.run([sys.executable, "-c", _RUN_IN_A_CHILD, str(workspace.path), sandbox.model_dump_json()],
                          env={**os.environ, **SECRETS}, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = TestReport.model_validate_json(done.stdout.strip().splitlines()[-1])
    assert report.ok, report.output_tail  # the suite itself still runs and passes
    found: dict[str, Any] = json.loads((workspace.path / "found.json").read_text())
    return found


def test_sandboxed_tests_see_no_credentials_no_user_files_and_no_network(hostile: tuple[Path, Workspace]) -> None:
    needs_bubblewrap()
    repo, workspace = hostile
    before = tree_fingerprint(repo)
    sandbox = Sandbox.resolve("bubblewrap", hide=[repo], pass_env=["LISTENING_PORT", "TARGET_HOME"])
    found = _tests_run_by_a_turnout_holding_secrets(workspace, sandbox)
    everything = json.dumps(found)
    assert not [name for name, value in SECRETS.items() if value in everything]  # not in os.environ, not in /proc
    allowed = {*ALLOWED_ENV, "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV", "LISTENING_PORT", "TARGET_HOME",
               "PWD", "PYTEST_VERSION"}  # set in there by the shell and by pytest
    assert set(found["environ"]) <= allowed | {name for name in found["environ"] if name.startswith("LC_")}
    wrote = found["wrote"]
    assert wrote[str(repo / "shop" / "inventory.py")] == "FileNotFoundError"  # the original tree is not there
    assert wrote[str(repo / "planted.py")] == "OSError"  # and it is read-only (EROFS)
    assert wrote[str(Path(os.environ["HOME"]) / "planted.txt")] == "written"  # into a private, empty home…
    assert found["connected"] != "connected"
    assert tree_fingerprint(repo) == before
    assert not (Path(os.environ["HOME"]) / "planted.txt").exists()  # …that vanished with the run
    assert not Path(found["tmp"]).exists()  # /tmp in there is its own


def test_unsandboxed_the_same_conftest_reaches_everything_it_tried(hostile: tuple[Path, Workspace]) -> None:
    """What the sandbox is for, shown without it (and proof the probe above can see a leak):
    only the environment's allowlist still holds."""
    repo, workspace = hostile
    found = _tests_run_by_a_turnout_holding_secrets(workspace, Sandbox(kind="none", pass_env=["LISTENING_PORT"]))
    assert not any(value in json.dumps(found["environ"]) for value in SECRETS.values())  # the allowlist
    assert SECRETS["OPENAI_API_KEY"] in found["proc"]  # …but the parent's environment is readable
    assert found["wrote"][str(repo / "planted.py")] == "written" and found["connected"] == "connected"
    Path(found["tmp"]).unlink()


async def test_pass_env_hands_one_named_variable_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", SECRETS["DATABASE_URL"])
    monkeypatch.setenv("GITHUB_PAT", SECRETS["GITHUB_PAT"])
    (tmp_path / "test_env.py").write_text(textwrap.dedent(f"""
        import os

        def test_only_the_passed_variable():
            assert os.environ.get("DATABASE_URL") == {SECRETS["DATABASE_URL"]!r}
            assert "GITHUB_PAT" not in os.environ
        """))
    for kind in ("none", "bubblewrap"):
        if kind == "bubblewrap" and bubblewrap_problem() is not None:
            continue
        report = await run_tests(tmp_path, sandbox=Sandbox(kind=kind, pass_env=["DATABASE_URL"]))  # type: ignore[arg-type]
        assert report.ok and report.passed == 1, report.output_tail


def test_asking_for_bubblewrap_where_it_cannot_run_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("turnout.tools.sandbox.bubblewrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(ConfigError, match="apt install bubblewrap"):
        Sandbox.resolve("bubblewrap")
    fallback = Sandbox.resolve("auto")
    assert fallback.kind == "none"
    assert fallback.describe().startswith("NOT sandboxed (bubblewrap (bwrap) is not installed)")
    assert Sandbox.resolve("off").describe().startswith("NOT sandboxed (turned off")


async def test_a_repositorys_venv_that_links_elsewhere_still_works_sandboxed(tmp_path: Path) -> None:
    """`.venv` inside the hidden repository, as a link to an environment kept elsewhere (how
    the refactor suite lends each project its cached one): found at its own path in there."""
    needs_bubblewrap()
    import sysconfig

    real = tmp_path / "envs" / "project"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(real)], check=True)
    site = real / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "only_in_the_venv.py").write_text("VALUE = 42\n")
    (site / "_pytest_from_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(real)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "test_venv.py").write_text("import only_in_the_venv\n\ndef test_it():\n    assert only_in_the_venv.VALUE == 42\n")
    report = await run_tests(workspace, python=str(repo / ".venv" / "bin" / "python"),
                             sandbox=Sandbox.resolve("bubblewrap", hide=[repo]))
    assert report.ok and report.passed == 1, report.output_tail
