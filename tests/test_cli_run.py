"""`turnout run`: the hybrid graph and a user's own graph, with checkpoints and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.scripted_team import Team, finish, in_order, plan, team  # noqa: F401
from turnout.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_CHECKPOINTS", str(tmp_path / "checkpoints.sqlite"))


def _run(*args: str) -> Any:
    return runner.invoke(app, ["run", *args], env={"COLUMNS": "200"})


def test_run_hybrid_prints_the_answer_and_a_summary(team: Team, tmp_path: Path) -> None:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("tax_for_region")])
    result = _run("hybrid", "Where is tax computed?", "--repo", str(team.repo), "--thread", "t1")
    assert result.exit_code == 0, result.output
    assert "tax_for_region" in result.stdout
    assert "retriever" in result.stdout  # the steps table
    assert "finished" in result.stderr and "thread t1" in result.stderr
    assert (tmp_path / "checkpoints.sqlite").is_file()


def test_a_crashed_run_resumes_from_its_checkpoint(team: Team) -> None:
    team.use("planner", in_order(plan(("retrieve", "find", [])), RuntimeError("planner crashed"), finish("tax_for_region (resumed)")))
    crashed = _run("hybrid", "Where is tax computed?", "--repo", str(team.repo), "--thread", "t2")
    assert crashed.exit_code != 0
    resumed = _run("hybrid", "--repo", str(team.repo), "--thread", "t2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.stdout
    assert len(team.scripts["retriever"].calls) == 1  # the finished step was not redone


def test_resume_of_an_unknown_thread_says_so(team: Team) -> None:
    result = _run("hybrid", "--repo", str(team.repo), "--thread", "nope", "--resume")
    assert result.exit_code == 2
    assert "no checkpoint for thread 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hybrid", "task", "--repo", "/no/such/repo"], "is not a directory"),
        (["hybrid", "--repo", "."], "give a task"),
        (["no_such_module:graph", "task"], "cannot load graph 'no_such_module:graph'"),
        (["justaname", "task"], "must be 'hybrid' or look like package.module:attribute"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_users_own_graph_runs_from_module_and_attribute(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    team.use("verifier", [{"passed": True, "reasons": ["matches"]}])
    result = _run("examples.custom_graph:build_graph", "Where is the invoice total computed?")
    assert result.exit_code == 0, result.output
    assert "done" in result.stderr


_HOLD_THE_THREAD = """
import asyncio, sys
from turnout.graphs.checkpointers import thread_lock

async def hold():
    async with thread_lock(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

asyncio.run(hold())
"""


def test_a_thread_another_process_is_running_is_refused(team: Team, tmp_path: Path) -> None:
    """Two runs driving one thread would interleave their checkpoints; the second is refused."""
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", _HOLD_THE_THREAD, str(tmp_path / "checkpoints.sqlite"), "busy"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = _run("hybrid", "Where is tax computed?", "--repo", str(team.repo), "--thread", "busy")
    finally:
        holder.communicate("done\n", timeout=30)
    assert result.exit_code == 2, result.output
    assert f"thread 'busy' is being run by process {holder.pid}" in result.stderr
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("tax_for_region")])
    again = _run("hybrid", "Where is tax computed?", "--repo", str(team.repo), "--thread", "busy")
    assert again.exit_code == 0, again.output  # released: the thread can run now


def test_a_run_without_a_supported_answer_is_unanswered_and_exits_1(team: Team) -> None:
    team.use("retriever", [RuntimeError("index unavailable"), {"keywords": ["tax"]}])
    team.use("planner", [plan(("retrieve", "find the tax code", []), ("retrieve", "find it again", [])), finish("finish")])
    result = _run("hybrid", "Where is tax computed?", "--repo", str(team.repo), "--thread", "u1")
    assert result.exit_code == 1, result.output
    status = " ".join(result.stderr.split())  # the status line, however the terminal wraps it
    assert status.startswith(
        "unanswered (the answer cites nothing, but the evidence that fits the question is shop/pricing.py:4 "
        "tax_for_region; the planner's answer 'finish' is a control word"
    )
    assert "1 of 2 steps not ok (1 error)" in status
