"""`turnout refactor` from the command line: report, exit codes, --apply and its guards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.refactor_repo import edit_plan, rename, repo, repo_that_may_change  # noqa: F401
from tests.scripted_team import Team, team  # noqa: F401
from turnout.cli import app
from turnout.tools import tree_fingerprint

runner = CliRunner()


@pytest.fixture(autouse=True)
def _checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_CHECKPOINTS", str(tmp_path / "checkpoints.sqlite"))


def _refactor(*args: str) -> Any:
    return runner.invoke(app, ["refactor", *args], env={"COLUMNS": "200"})


def test_a_successful_rename_reports_the_patch(team: Team, repo: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "Rename load_inventory to read_inventory")
    assert result.exit_code == 0, result.output
    assert "rename load_inventory → read_inventory" in result.stdout
    assert "2 passed" in result.stdout and "codemod:rename (local): accepted" in result.stdout
    patch = next(line for line in result.stdout.splitlines() if "patch" in line).split()[-1]
    assert Path(patch).is_file() and "+def read_inventory" in Path(patch).read_text()
    assert "left for you" in result.stdout and "README.md:1" in result.stdout  # prose is the user's call
    assert "succeeded" in result.stderr
    tests_run_with = next(line for line in result.stdout.splitlines() if "tests run with" in line)
    assert "turnout's own Python" in tests_run_with and "pass --python" in tests_run_with


def test_a_review_that_names_nothing_in_the_diff_is_reported_as_no_usable_review(team: Team, repo: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": ["1", "2", "3"]}])
    result = _refactor(str(repo), "Rename load_inventory to read_inventory")
    assert result.exit_code == 0, result.output
    review = next(line for line in result.stdout.splitlines() if line.strip().startswith("review"))
    assert "no usable review (its reasons name nothing in the diff: 1; 2; 3)" in review and "passed" not in review


def test_a_partial_run_exits_1_and_is_not_applied(team: Team, repo_that_may_change: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": False, "reasons": ["read_inventory breaks callers outside this repository"]}])
    before = tree_fingerprint(repo_that_may_change)
    result = _refactor(str(repo_that_may_change), "Rename load_inventory to read_inventory", "--apply")
    assert result.exit_code == 1
    assert "partial" in result.stderr and "review doubts the change" in result.stderr
    assert tree_fingerprint(repo_that_may_change) == before


def test_apply_writes_the_verified_change_into_the_repository(team: Team, repo_that_may_change: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo_that_may_change), "Rename load_inventory to read_inventory", "--apply")
    assert result.exit_code == 0, result.output
    assert "def read_inventory" in (repo_that_may_change / "shop" / "inventory.py").read_text()
    assert "applied to" in result.stdout


def test_apply_refuses_a_dirty_working_tree(team: Team, repo_that_may_change: Path) -> None:
    (repo_that_may_change / "shop" / "inventory.py").write_text("# local work in progress\n")
    before = tree_fingerprint(repo_that_may_change)
    result = _refactor(str(repo_that_may_change), "Rename load_inventory to read_inventory", "--apply")
    assert result.exit_code == 2
    assert "uncommitted changes (shop/inventory.py)" in result.stderr
    assert tree_fingerprint(repo_that_may_change) == before


def test_apply_is_not_refused_for_turnouts_own_folder_or_an_untracked_virtual_environment(
    team: Team, repo_that_may_change: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from inside the repository: `.turnout/` appears there, beside the project's venv."""
    (repo_that_may_change / ".venv" / "lib").mkdir(parents=True)
    (repo_that_may_change / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo_that_may_change / ".venv" / "lib" / "site.py").write_text("# not the project's code\n")
    monkeypatch.chdir(repo_that_may_change)
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    first = _refactor(".", "Rename load_inventory to read_inventory")
    assert first.exit_code == 0, first.output
    assert (repo_that_may_change / ".turnout").is_dir()
    team.use("planner", [rename("total", "stock_total")])
    team.use("verifier", [{"passed": True, "reasons": []}])
    second = _refactor(".", "Rename total to stock_total", "--apply")
    assert second.exit_code == 0, second.output
    assert "applied to" in second.stdout


def test_nothing_to_change_exits_0_without_a_patch(team: Team, repo: Path) -> None:
    team.use("planner", [rename("frobnicate", "blah")])
    result = _refactor(str(repo), "Rename frobnicate to blah")
    assert result.exit_code == 0, result.output
    assert "nothing_to_change" in result.stderr and "patch" not in result.stdout


def test_a_failed_run_exits_1_and_leaves_the_repository_alone(team: Team, repo: Path) -> None:
    team.use("planner", [edit_plan()])
    team.use("coder", [{"edits": [{"path": "shop/inventory.py", "symbol": "total", "code": "def total(p):\n    return -1\n"}], "explanation": ""}])
    result = _refactor(str(repo), "Tidy total", "--max-attempts", "1")
    assert result.exit_code == 1
    assert "failed" in result.stderr


def test_a_missing_directory_is_exit_code_2() -> None:
    result = _refactor("/no/such/repo", "Rename a to b")
    assert result.exit_code == 2 and "is not a directory" in result.stderr


def test_an_interpreter_that_does_not_exist_is_exit_code_2(repo: Path) -> None:
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--python", "/no/such/python")
    assert result.exit_code == 2 and "'/no/such/python' does not exist; pass --python" in result.stderr


def test_no_test_command_is_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "mod.py").write_text("def f():\n    return 1\n")
    result = _refactor(str(tmp_path / "plain"), "Rename f to g")
    assert result.exit_code == 2 and "--test-cmd" in result.stderr


def remote_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The team's scripted planner, declared remote (a stand-in for a cloud model)."""
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__MODEL", "scripted/t-planner")
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__LOCALITY", "remote")
    monkeypatch.delenv("TURNOUT_ROLES__PLANNER")


def test_refactor_runs_under_no_code_by_default_and_proves_it(
    team: Team, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_planner(monkeypatch)
    planner = team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "I'd like load_inventory to be known as read_inventory")  # no phrasing reads it
    assert result.exit_code == 0, result.output
    assert len(planner.calls) == 1
    assert "policy no-code · remote calls: 1" in result.stderr
    assert "source code sent remotely: 0 bytes" in result.stderr


def test_refactor_offline_refuses_a_remote_planner_before_starting(
    team: Team, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_planner(monkeypatch)
    planner = team.use("planner", [rename()])
    before = tree_fingerprint(repo)
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--offline")
    assert result.exit_code == 2
    assert "role planner" in result.stderr and "local-only" in result.stderr
    assert planner.calls == [] and tree_fingerprint(repo) == before


def test_an_unknown_policy_is_exit_code_2(repo: Path) -> None:
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--policy", "closed")
    assert result.exit_code == 2
    assert "'closed' is not a privacy policy: use open, no-code or local-only" in result.stderr


def test_error_messages_keep_their_config_keys(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER", "anthropic/claude-sonnet-4-5")
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--offline")
    assert result.exit_code == 2
    assert "set [roles] planner to a local model" in result.stderr
    assert "or run without --policy local-only / --offline" in result.stderr  # typed for the run: config cannot loosen it


def test_the_command_line_form_with_a_deprecated_alias(team: Team, repo: Path) -> None:
    planner = team.use("planner", [])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "rename", "load_inventory", "read_inventory", "--keep-alias", "deprecated")
    assert result.exit_code == 0, result.output
    assert "plan (command line)" in result.stdout
    assert "rename load_inventory → read_inventory (old name kept as a deprecated alias)" in result.stdout
    assert planner.calls == []


def test_a_plan_file_runs_and_a_bad_one_is_refused_with_its_reason(team: Team, repo: Path, tmp_path: Path) -> None:
    team.use("verifier", [{"passed": True, "reasons": []}])
    plan = tmp_path / "plan.toml"
    plan.write_text('[[operations]]\nop = "move"\nsymbols = ["total"]\nto_module = "shop.totals"\n')
    result = _refactor(str(repo), "--plan", str(plan))
    assert result.exit_code == 0, result.output
    assert "plan (plan file)" in result.stdout and "move total from shop.inventory → shop.totals" in result.stdout
    plan.write_text('[[operations]]\nop = "move"\nnames = ["total"]\nto_module = "shop.totals"\n')
    result = _refactor(str(repo), "--plan", str(plan))
    assert result.exit_code == 2
    assert "operation 1 (move), field names: unknown field" in result.stderr
    result = _refactor(str(repo), "Rename a to b", "--plan", str(plan))
    assert result.exit_code == 2 and "either a request or --plan FILE" in result.stderr


def test_a_plan_that_names_nothing_here_is_exit_code_1(repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"operations": [{"op": "inline", "name": "frobnicate"}]}')
    result = _refactor(str(repo), "--plan", str(plan))
    assert result.exit_code == 1
    assert "no module-level function or variable 'frobnicate'" in result.stderr


def test_started_inside_the_repository_the_evidence_goes_outside_it(
    team: Team, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team.use("verifier", [{"passed": True, "reasons": []}])
    monkeypatch.chdir(repo)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = _refactor(".", "Rename load_inventory to read_inventory")
    assert result.exit_code == 0, result.output
    patch = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["patch"]).split()[-1]
    assert Path(patch).is_relative_to(tmp_path / "cache" / "turnout" / "refactor")
    assert not (repo / ".turnout" / "work").exists() and not (repo / ".turnout" / "patches").exists()


def test_files_the_tests_write_are_not_in_the_patch_nor_applied(team: Team, repo_that_may_change: Path) -> None:
    """A suite that creates a file and appends to a source file while it runs: the verified
    patch holds turnout's edit only, and --apply writes nothing else."""
    import subprocess

    repo = repo_that_may_change
    (repo / "tests" / "conftest.py").write_text(
        "import pathlib\n"
        "pathlib.Path('tests/created_by_the_tests.py').write_text('x = 1\\n')\n"
        "with open('shop/inventory.py', 'a') as f:\n    f.write('# appended by the tests\\n')\n"
    )
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"], check=True)
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--apply")
    assert result.exit_code == 0, result.output
    patch = Path(next(line for line in result.stdout.splitlines() if "patch" in line).split()[-1]).read_text()
    assert "+def read_inventory" in patch
    assert "created_by_the_tests" not in patch and "appended by the tests" not in patch
    assert not (repo / "tests" / "created_by_the_tests.py").exists()
    assert "appended by the tests" not in (repo / "shop" / "inventory.py").read_text()


def test_a_run_without_a_sandbox_says_so_first_and_in_the_report(team: Team, repo: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--sandbox", "off")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("warning: NOT sandboxed (turned off")
    sandbox = next(line for line in result.stdout.splitlines() if line.strip().startswith("sandbox"))
    assert "NOT sandboxed" in sandbox


def test_a_sandbox_that_cannot_run_is_refused_before_anything_runs(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("turnout.tools.sandbox.bubblewrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    result = _refactor(str(repo), "Rename load_inventory to read_inventory", "--sandbox", "bubblewrap")
    assert result.exit_code == 2
    assert "--sandbox bubblewrap was asked for, but bubblewrap (bwrap) is not installed" in result.stderr
    bad = _refactor(str(repo), "Rename load_inventory to read_inventory", "--pass-env", "A=B")
    assert bad.exit_code == 2 and "--pass-env takes an environment variable's name, not 'A=B'" in bad.stderr


def test_a_file_name_with_a_newline_neither_breaks_a_run_nor_a_message(team: Team, repo_that_may_change: Path) -> None:
    import subprocess

    repo = repo_that_may_change
    (repo / "shop" / "new\nline.py").write_text("X = 1\n")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"], check=True)
    (repo / "shop" / "also\nodd.py").write_text("Y = 2\n")  # untracked
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    result = _refactor(str(repo), "Rename load_inventory to read_inventory")
    assert result.exit_code == 0, result.output
    refused = _refactor(str(repo), "Rename load_inventory to read_inventory", "--apply")
    assert refused.exit_code == 2
    assert "uncommitted changes (shop/also\\nodd.py)" in refused.stderr.replace("\n", "")
