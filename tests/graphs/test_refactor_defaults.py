"""The library owns refactoring's defaults: the graph runs under `no-code` unless config chose
a policy, wherever it is built (not only under `turnout refactor`), and `run_refactor` does
what the command line does (checks, apply, clean-up) for any Python caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.refactor_repo import rename, repo, repo_that_may_change  # noqa: F401
from tests.scripted_team import Team, team  # noqa: F401
from turnout.config import load_settings, use_settings
from turnout.errors import UserError
from turnout.graphs.refactor import build_refactor_graph
from turnout.graphs.refactor_run import run_refactor
from turnout.telemetry import _conventions as sc
from turnout.tools import tree_fingerprint

UNREAD = "I'd like load_inventory to be known as read_inventory"  # no phrasing reads it: the planner does


@pytest.fixture
def remote_planner(team: Team, monkeypatch: pytest.MonkeyPatch) -> Team:
    """The team's scripted planner, declared remote (a stand-in for a cloud model); no policy in config."""
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__MODEL", "scripted/t-planner")
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__LOCALITY", "remote")
    monkeypatch.delenv("TURNOUT_ROLES__PLANNER")
    use_settings(load_settings())
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    return team


def _planner_policy(spans: Any) -> str:
    (chat,) = [s for s in spans.get_finished_spans() if s.name == "chat t-planner"]
    return str(chat.attributes[sc.EGRESS_POLICY])


async def test_a_refactor_graph_built_in_python_runs_under_no_code_by_default(
    remote_planner: Team, repo: Path, tmp_path: Path, spans: Any
) -> None:
    graph = build_refactor_graph(work_dir=tmp_path / "work")
    state = await graph.ainvoke({"request": UNREAD, "repo": str(repo)}, {"configurable": {"thread_id": "d-1"}})
    assert state["status"] == "succeeded", state.get("reason")
    assert _planner_policy(spans) == "no-code"


async def test_a_policy_chosen_in_config_is_kept(remote_planner: Team, repo: Path, tmp_path: Path, spans: Any) -> None:
    use_settings(load_settings(policy={"mode": "open"}))
    graph = build_refactor_graph(work_dir=tmp_path / "work")
    await graph.ainvoke({"request": UNREAD, "repo": str(repo)}, {"configurable": {"thread_id": "d-2"}})
    assert _planner_policy(spans) == "open"


async def test_run_refactor_applies_a_verified_patch_and_removes_its_workspace(
    remote_planner: Team, repo_that_may_change: Path, tmp_path: Path
) -> None:
    seen: list[str | None] = []
    values = await run_refactor(repo_that_may_change, UNREAD, apply=True, work_dir=tmp_path / "work",
                                checkpoints=str(tmp_path / "c.sqlite"), on_progress=lambda node, _: seen.append(node))
    assert values["status"] == "succeeded" and values["policy"] == "no-code"
    assert values["applied"] and "def read_inventory" in (repo_that_may_change / "shop" / "inventory.py").read_text()
    assert not Path(values["workspace"]).exists()
    assert values["sent"].remote_calls == 1 and values["sent"].source_bytes_sent == 0
    assert {"prepare", "plan", "edit", "verify", "finish"} <= set(seen)


async def test_run_refactor_refuses_to_apply_over_uncommitted_work(repo_that_may_change: Path) -> None:
    (repo_that_may_change / "shop" / "inventory.py").write_text("# mine, not committed\n")
    before = tree_fingerprint(repo_that_may_change)
    with pytest.raises(UserError, match="uncommitted changes"):
        await run_refactor(repo_that_may_change, UNREAD, apply=True)
    assert tree_fingerprint(repo_that_may_change) == before
