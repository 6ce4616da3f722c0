"""`turnout replay` from the command line: a `turnout run` replayed with no model, bad names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.scripted_team import Team, finish, plan, team  # noqa: F401
from turnout.cli import app
from turnout.config import ROLE_NAMES
from turnout.engines import scripted
from turnout.graphs.replay import recorded_runs

runner = CliRunner()


@pytest.fixture(autouse=True)
def _checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_CHECKPOINTS", str(tmp_path / "checkpoints.sqlite"))


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _recorded_run(team: Team) -> str:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("tax_for_region")])
    result = _invoke("run", "hybrid", "Where is tax computed?", "--repo", str(team.repo))
    assert result.exit_code == 0, result.output
    (manifest,) = recorded_runs(Path(".turnout/traces"))
    assert manifest.context == {"target": "hybrid", "repo": str(team.repo.resolve())}
    return manifest.run_id


def test_replay_reruns_a_recorded_run_with_no_model(team: Team) -> None:
    run_id = _recorded_run(team)
    for role in ROLE_NAMES:
        scripted.unregister(f"t-{role}")
    result = _invoke("replay", run_id[:10])
    assert result.exit_code == 0, result.output
    assert "tax_for_region" in result.stdout
    assert "4 call(s) from the recording, 0 live, 0 recorded call(s) not asked for" in result.stderr
    assert f"turnout trace diff {run_id[:12]}" in result.stderr


def test_replay_lists_the_nodes_and_roles_when_a_live_name_is_wrong(team: Team) -> None:
    run_id = _recorded_run(team)
    result = _invoke("replay", run_id, "--live", "routr")
    assert result.exit_code == 2
    assert "nodes are decide, plan, route, work; roles are planner, router" in result.stderr


def test_replay_of_an_unknown_run_is_exit_code_2(team: Team) -> None:
    _recorded_run(team)
    result = _invoke("replay", "ffffffff")
    assert result.exit_code == 2 and "no recorded run 'ffffffff'" in result.stderr


def test_from_step_answers_later_calls_live(team: Team) -> None:
    run_id = _recorded_run(team)
    team.use("planner", [finish("tax_for_region, answered live")])  # only the final decision is live
    result = _invoke("replay", run_id, "--from", "4")
    assert result.exit_code == 0, result.output
    assert "answered live" in result.stdout
    assert "3 call(s) from the recording, 1 live" in result.stderr
