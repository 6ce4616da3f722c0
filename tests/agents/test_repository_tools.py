"""turnout's tools as agent tools: typed, confined to the repository, honest about what their
results hold, and changing only a workspace copy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.privacy.fake_provider import Calls, FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from tests.refactor_repo import make_repo, repo  # noqa: F401  (the fixture)
from turnout.agents import Agent
from turnout.agents.repository_tools import RepositoryTools
from turnout.engines import tag
from turnout.engines.scripted import Script
from turnout.tools.workspace import tree_fingerprint


def _tools(tools: RepositoryTools) -> dict[str, Any]:
    return {t.name: t for t in [*tools.reading(), *tools.changing()]}


async def test_reading_tools_give_locations_signatures_and_code_each_tagged(repo: Path) -> None:
    tools = _tools(RepositoryTools(repo))
    found = (await tools["find_symbol"].invoke({"name": "load_inventory"})).content
    assert str(found) == "shop/inventory.py:1-3 def load_inventory(path)"
    assert set(found.bytes_by_kind()) == {"path", "signature", "instructions"}

    uses = (await tools["find_references"].invoke({"name": "load_inventory"})).content
    assert "shop/inventory.py:7 return sum(int(v) for v in load_inventory(path).values())" in str(uses)
    hits = (await tools["search_code"].invoke({"query": "stock counts", "limit": 1})).content
    assert str(hits).startswith("shop/inventory.py:1-3 load_inventory\n") and hits.bytes_by_kind()["code"] > 0

    lines = (await tools["read_file"].invoke({"path": "shop/inventory.py", "start": 5, "end": 6})).content
    assert str(lines) == "5: \n6: def total(path):" and lines.parts[0].kind == "code"
    listed = (await tools["list_files"].invoke({"under": "shop"})).content
    assert str(listed) == "shop/__init__.py\nshop/inventory.py"


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.py", "shop/../../outside.py", ".git/config", "escape/x.py"])
async def test_paths_outside_the_repository_are_refused_and_the_model_is_told(repo: Path, path: str) -> None:
    (repo.parent / "outside.py").write_text("SECRET = 1\n")
    os.symlink(repo.parent, repo / "escape")
    try:
        result = await _tools(RepositoryTools(repo))["read_file"].invoke({"path": path})
    finally:
        (repo / "escape").unlink()
    assert result.error is not None and ("not a path inside the repository" in result.error
                                         or "leads outside the repository" in result.error)
    assert "SECRET" not in str(result.content)


async def test_changing_tools_work_in_a_copy_and_the_repository_stays_byte_identical(repo: Path) -> None:
    before = tree_fingerprint(repo)
    repository = RepositoryTools(repo, run_id="agent-test")
    tools = _tools(repository)
    renamed = await tools["rename_symbol"].invoke({"old": "load_inventory", "new": "read_inventory"})
    assert str(renamed.content) == ("changed: shop/__init__.py, shop/inventory.py, tests/test_inventory.py\n"
                                    "mentions left to review: README.md:1")
    diff = (await tools["workspace_diff"].invoke({})).content
    assert "+def read_inventory(path):" in str(diff) and diff.parts[0].kind == "diff"
    tested = (await tools["run_tests"].invoke({"test_ids": ["tests/test_inventory.py::test_total"]})).content
    assert str(tested).startswith("1 passed")
    refused = await tools["run_tests"].invoke({"test_ids": ["-p", "evil"]})
    assert refused.error is not None and "is an option, not a test id" in refused.error
    assert tree_fingerprint(repo) == before
    repository.workspace.remove()


async def test_a_repository_agent_in_a_few_lines(repo: Path) -> None:
    script = Script([{"tool_calls": [{"name": "find_symbol", "arguments": {"name": "total"}}]},
                     {"answer": "shop/inventory.py:6 total"}])
    agent = Agent("explorer", model=script, tools=RepositoryTools(repo).reading())
    result = await agent.run("Where are the stock counts added up?")
    assert result.text == "shop/inventory.py:6 total"
    assert "shop/inventory.py:6-7 def total(path)" in str(script.calls[1])


async def test_under_no_code_a_remote_model_sees_locations_and_signatures_but_no_source(
    repo: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_role(fake_provider, monkeypatch, policy={"mode": "no-code", "on_forbidden": "redact"})
    answers = iter([Calls([("search_code", {"query": "stock counts"})]), "load_inventory in shop/inventory.py"])
    fake_provider.answer = lambda request: next(answers)
    result = await Agent("planner", tools=RepositoryTools(repo).reading()).run(tag.request("Where are stock counts read?"))
    assert result.text == "load_inventory in shop/inventory.py"
    sent = fake_provider.requests[1]["messages"][-1]["content"]
    assert "shop/inventory.py:1-3 load_inventory" in sent  # the location and the symbol went
    assert "line.split('=')" not in sent and not fake_provider.received("Read stock counts from a text file")


async def test_a_signature_over_several_lines_is_one_line_and_results_stay_apart(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    (repo / "shop" / "report.py").write_text(
        "def stock_report(\n    path: str,\n    *,\n    limit: int = 10,\n) -> dict[str, int]:\n"
        '    """Stock counts, largest first."""\n    return {}\n'
    )
    tools = _tools(RepositoryTools(repo))
    found = (await tools["find_symbol"].invoke({"name": "stock_report"})).content
    assert str(found) == "shop/report.py:1-7 def stock_report(path: str, *, limit: int = 10,) -> dict[str, int]"

    from turnout.engines.privacy import release
    from turnout.config import load_settings

    hits = (await tools["search_code"].invoke({"query": "stock", "limit": 2})).content
    shown, _ = await release(hits, load_settings(policy={"mode": "no-code"}), client="remote", what="search")
    lines = str(shown).splitlines()  # each hit: its location and symbol, then its code withheld
    assert len(lines) == 4 and lines[0] == "shop/report.py:1-7 stock_report"
    assert lines[1].startswith("[code from shop/report.py:1-7") and lines[3].startswith("[code from ")
