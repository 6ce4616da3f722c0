"""`open_checkpointer` and `--checkpointer`: SQLite files, PostgreSQL URLs, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.scripted_team import Team, finish, plan, team  # noqa: F401
from turnout.cli import app
from turnout.errors import UserError
from turnout.graphs._running import thread_config
from turnout.graphs.checkpointers import is_postgres, open_checkpointer, redacted

runner = CliRunner()


def test_urls_are_told_apart_and_passwords_never_shown() -> None:
    assert is_postgres("postgres://u@h/db") and is_postgres("postgresql://u@h/db")
    assert not is_postgres(".turnout/checkpoints.sqlite") and not is_postgres("sqlite:///x.sqlite")
    assert redacted("postgresql://turnout:s3cret@db:5432/runs") == "postgresql://turnout:***@db:5432/runs"
    assert redacted("postgresql://turnout@db/runs") == "postgresql://turnout@db/runs"


async def test_sqlite_paths_may_be_written_as_urls(tmp_path: Path) -> None:
    async with open_checkpointer(f"sqlite:///{tmp_path}/nested/runs.sqlite") as saver:
        assert await saver.aget_tuple(thread_config("none")) is None
    assert (tmp_path / "nested" / "runs.sqlite").is_file()


async def test_a_directory_is_not_a_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory; give a file"):
        async with open_checkpointer(tmp_path):
            pass


async def test_an_unreachable_postgres_says_where_without_the_password() -> None:
    with pytest.raises(UserError) as caught:
        async with open_checkpointer("postgresql://turnout:s3cret@127.0.0.1:1/runs"):
            pass
    message = str(caught.value)
    assert "cannot open checkpoints at postgresql://turnout:***@127.0.0.1:1/runs" in message
    assert "s3cret" not in message and "check that PostgreSQL is running" in message


async def test_without_the_postgres_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres.aio", None)
    with pytest.raises(UserError, match=r"pip install 'turnout\[postgres\]'"):
        async with open_checkpointer("postgresql://turnout@127.0.0.1/runs"):
            pass


async def test_postgres_tables_are_created_and_reopening_is_harmless(postgres_url: str) -> None:
    for _ in range(2):
        async with open_checkpointer(postgres_url) as saver:
            assert await saver.aget_tuple(thread_config("never-run")) is None


def test_turnout_run_checkpoints_to_postgres_and_resumes_from_it(team: Team, postgres_url: str) -> None:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("tax_for_region")])
    args = ["--repo", str(team.repo), "--thread", "pg-cli-1", "--checkpointer", postgres_url]
    first = runner.invoke(app, ["run", "hybrid", "Where is tax computed?", *args], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["run", "hybrid", "--resume", *args], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "tax_for_region" in again.stdout  # the finished thread's state, read back from Postgres
    assert len(team.scripts["retriever"].calls) == 1


def test_an_unknown_thread_in_postgres_is_a_clear_error(team: Team, postgres_url: str) -> None:
    url = postgres_url.replace("turnout@", "turnout:pw@")
    result = runner.invoke(
        app, ["run", "hybrid", "--repo", str(team.repo), "--thread", "nope", "--resume", "--checkpointer", url]
    )
    assert result.exit_code == 2
    assert "no checkpoint for thread 'nope'" in result.stderr and ":***@" in result.stderr


def test_every_model_in_turnouts_states_comes_back_from_a_checkpoint_as_itself() -> None:
    from turnout.agents.refactor_planner import RefactorPlan, refactor_plan_schema
    from turnout.graphs._refactor_state import Attempt
    from turnout.graphs._running import turnout_serializer
    from turnout.tools.test_runner import TestReport

    report = TestReport(command="pytest", exit_code=0, passed=3, duration_s=0.5)
    constrained = refactor_plan_schema(("load_inventory",), ())  # what the planner really returns
    state = {
        "plan": constrained(operation="rename", symbol="load_inventory", new_name="read_inventory"),
        "attempts": [Attempt(number=1, method="codemod:rename", tests=report)],
        "baseline": report,
    }
    serializer = turnout_serializer()
    revived = serializer.loads_typed(serializer.dumps_typed(state))
    assert isinstance(revived["plan"], RefactorPlan) and revived["plan"].new_name == "read_inventory"
    assert isinstance(revived["attempts"][0], Attempt) and isinstance(revived["attempts"][0].tests, TestReport)
    assert revived["baseline"] == report


async def test_an_unknown_scheme_is_refused_and_never_becomes_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        async with open_checkpointer("mysql://app:PASS@db/runs"):
            pass
    assert str(caught.value).startswith("unknown checkpointer scheme 'mysql' in mysql://app:***@db/runs")
    assert "sqlite:///path" in str(caught.value) and "postgres://" in str(caught.value)
    assert not any("PASS" in path.name for path in tmp_path.rglob("*"))


async def test_one_thread_is_run_by_one_process_at_a_time_in_postgres(postgres_url: str) -> None:
    from turnout.graphs.checkpointers import ThreadBusy, thread_lock

    async with thread_lock(postgres_url, "pg-busy"):
        with pytest.raises(ThreadBusy, match="thread 'pg-busy' is being run by another process"):
            async with thread_lock(postgres_url, "pg-busy"):
                pass
        async with thread_lock(postgres_url, "pg-other"):  # other threads are free
            pass
    async with thread_lock(postgres_url, "pg-busy"):  # released
        pass


async def test_an_unreachable_postgres_lock_says_where_without_the_password() -> None:
    from turnout.graphs.checkpointers import thread_lock

    with pytest.raises(UserError, match=r"cannot open checkpoints at postgresql://turnout:\*\*\*@127.0.0.1:1/runs"):
        async with thread_lock("postgresql://turnout:s3cret@127.0.0.1:1/runs", "t"):
            pass
