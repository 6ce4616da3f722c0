"""A hybrid run killed with SIGKILL mid-run resumes in a second process, against SQLite and
against a real PostgreSQL server: no completed step is lost, none is done twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_team import REPO_FILES
from turnout.graphs._running import thread_config
from turnout.graphs.checkpointers import open_checkpointer

ROOT = Path(__file__).resolve().parents[2]
THREAD = "killed-1"
pytestmark = pytest.mark.slow


def _worker(phase: str, checkpointer: str, repo: Path, journal: Path) -> list[str]:
    return [sys.executable, "-m", "tests.durability.kill_resume_worker", phase, checkpointer, THREAD, str(repo), str(journal)]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    env.update(PYTHONPATH=str(ROOT), TURNOUT_TRACES_DIR=str(tmp_path / "traces"), COLUMNS="200")
    return env


async def _finished_steps(checkpointer: str) -> set[str]:
    """The work tasks whose results are saved in the thread's newest checkpoint (as pending
    writes of the superstep still running)."""
    async with open_checkpointer(checkpointer) as saver:
        saved = await saver.aget_tuple(thread_config(THREAD))
    if saved is None:
        return set()
    return {task_id for task_id, channel, _ in saved.pending_writes or [] if channel == "results"}


def _wait_for_two_finished_steps(checkpointer: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the first run ended early:\n{log.read_text(errors='replace')}"
        try:
            if len(asyncio.run(_finished_steps(checkpointer))) >= 2:
                return
        except Exception:  # noqa: BLE001, S110 - the writer holds SQLite's lock a moment, or no tables yet
            pass
        time.sleep(0.2)
    pytest.fail(f"steps 0 and 1 were never checkpointed:\n{log.read_text(errors='replace')}")


def _journal(path: Path) -> list[tuple[int, str, str]]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        pid, role, what = line.split(" ", 2)
        entries.append((int(pid), role, what))
    return entries


async def _final_state(checkpointer: str) -> dict[str, Any]:
    from turnout.graphs import build_hybrid_graph

    async with open_checkpointer(checkpointer) as saver:
        graph = build_hybrid_graph(checkpointer=saver)
        return dict((await graph.aget_state(thread_config(THREAD))).values)


@pytest.fixture(params=["sqlite", "postgres"])
def checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "checkpoints.sqlite")
    url = request.getfixturevalue("postgres_url")
    return f"{url}?options=-csearch_path%3Dkill_{os.getpid()}_{time.monotonic_ns()}"


def _fresh_schema(url: str) -> None:
    """Each Postgres test gets its own schema, so runs never see each other's checkpoints."""
    import psycopg

    schema = url.split("search_path%3D", 1)[1]
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")


def test_a_killed_run_resumes_in_another_process_without_losing_or_redoing_steps(
    checkpointer: str, tmp_path: Path
) -> None:
    if checkpointer.startswith("postgresql://"):
        _fresh_schema(checkpointer)
    repo = tmp_path / "repo"
    for name, text in REPO_FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    journal, first_log = tmp_path / "journal.txt", tmp_path / "first.log"

    with first_log.open("wb") as log:
        first = subprocess.Popen(
            _worker("start", checkpointer, repo, journal), cwd=tmp_path, env=_env(tmp_path),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            _wait_for_two_finished_steps(checkpointer, first, first_log)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(
        _worker("resume", checkpointer, repo, journal), cwd=tmp_path, env=_env(tmp_path),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "tax_for_region in shop/pricing.py" in second.stdout

    entries = _journal(journal)
    first_pid, second_pid = first.pid, next(pid for pid, _, _ in entries if pid != first.pid)
    by_process = {pid: Counter((role, what) for p, role, what in entries if p == pid) for pid in (first_pid, second_pid)}
    # Done before the kill, and never again: the plan, the routes, and steps 0 and 1.
    assert by_process[first_pid] == Counter(
        {("planner", "plan"): 1, ("router", "look 0"): 1, ("router", "look 1"): 1, ("router", "look 2"): 1,
         ("retriever", "look 0"): 1, ("retriever", "look 1"): 1, ("retriever", "look 2"): 1}
    )
    # After it: only the step that was cut off, and the planner's decision.
    assert by_process[second_pid] == Counter({("retriever", "look 2"): 1, ("planner", "decide"): 1})

    state = asyncio.run(_final_state(checkpointer))
    assert state["status"] == "finished"
    assert sorted(r.index for r in state["results"]) == [0, 1, 2]
    assert all(r.status == "ok" for r in state["results"])
