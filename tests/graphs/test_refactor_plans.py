"""Refactor runs driven by plans: from plain words (no model), from a plan file, and what
keeps a run from `succeeded` when the plan or its result falls short of the request.

Every test's repository is checked byte-identical on the way out (the `repo` fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from tests.refactor_repo import code, rename, repo  # noqa: F401
from tests.scripted_team import Team, team  # noqa: F401
from turnout.graphs.refactor import build_refactor_graph
from turnout.tools.operations import Move, Plan, Rename, parse_plan

PASSED = {"passed": True, "reasons": []}


async def _refactor(repo: Path, request: str, tmp_path: Path, **inputs: Any) -> dict[str, Any]:
    graph = build_refactor_graph(checkpointer=InMemorySaver(), work_dir=tmp_path / "work", test_timeout_s=60)
    return await graph.ainvoke({"request": request, "repo": str(repo), **inputs}, {"configurable": {"thread_id": "p"}})


async def test_a_phrasing_with_a_deprecated_alias_runs_without_the_planner(team: Team, repo: Path, tmp_path: Path) -> None:
    planner = team.use("planner", [])
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "Rename load_inventory to read_inventory, keeping the old name as a deprecated alias",
                            tmp_path)
    assert state["status"] == "succeeded", state.get("reason")
    assert state["plan_source"] == "phrasing" and planner.calls == []
    assert state["plan"].describe() == ["rename load_inventory → read_inventory (old name kept as a deprecated alias)"]
    patch = Path(state["patch"]).read_text()
    assert '+_DEPRECATED_NAMES = {"load_inventory": "read_inventory"}' in patch
    assert state["attempts"][-1].missing == []


async def test_a_clause_no_operation_covers_makes_the_run_partial(team: Team, repo: Path, tmp_path: Path) -> None:
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "Rename load_inventory to read_inventory and add type hints", tmp_path)
    assert state["status"] == "partial"
    assert state["reason"] == "the tests pass, but not done: add type hints: asked for, but no operation does it"
    assert Path(state["patch"]).is_file()


async def test_a_model_plan_that_drops_the_alias_is_partial_not_succeeded(team: Team, repo: Path, tmp_path: Path) -> None:
    planner = team.use("planner", [rename()])
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "I'd like load_inventory to be known as read_inventory, old name still importable",
                            tmp_path)
    assert state["plan_source"] == "model" and len(planner.calls) == 1
    assert state["status"] == "partial"
    assert "not done: keep the old name as an alias: asked for, but no operation does it" in state["reason"]


async def test_a_postcondition_that_does_not_hold_makes_the_run_partial(team: Team, repo: Path, tmp_path: Path) -> None:
    # ruff cannot rewrite "{a}".format(**d); the request said all, so the run cannot say succeeded.
    team.use("verifier", [PASSED])
    extra = repo.parent / "extra_repo"
    import shutil
    import subprocess

    shutil.copytree(repo, extra)
    (extra / "shop" / "labels.py").write_text("FIELDS = {'a': 1}\nA = '{a}'.format(**FIELDS)\nNAME = 'x'\nB = '%s!' % NAME\n")
    subprocess.run(["git", "-C", str(extra), "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(extra), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True)
    state = await _refactor(extra, "Convert all string formatting to f-strings", tmp_path)
    assert state["status"] == "partial"
    assert "not proven: operation 1 (convert_formatting): 1 string-formatting call(s) left: shop/labels.py:2" in state["reason"]
    assert "+B = f'{NAME}!'" in Path(state["patch"]).read_text()


async def test_a_plan_file_with_several_operations_runs_them_in_order(team: Team, repo: Path, tmp_path: Path) -> None:
    planner = team.use("planner", [])
    team.use("verifier", [PASSED])
    plan = Plan(operations=[Rename(old="load_inventory", new="read_inventory", keep_alias="plain"),
                            Move(symbols=["total"], to_module="shop.totals")])
    state = await _refactor(repo, "the plan in plan.toml", tmp_path, plan=plan, plan_source="plan file")
    assert state["status"] == "succeeded", state.get("reason")
    assert planner.calls == [] and state["uncovered"] == []
    assert state["attempts"][-1].method == "codemod:rename+move"
    assert sorted(state["changed_files"]) == ["shop/__init__.py", "shop/inventory.py", "shop/totals.py",
                                              "tests/test_inventory.py"]


async def test_a_plan_file_naming_what_does_not_exist_fails_before_any_edit(team: Team, repo: Path, tmp_path: Path) -> None:
    plan = parse_plan({"operations": [{"op": "rename", "old": "load_inventory", "new": "read_inventory"},
                                      {"op": "inline", "name": "frobnicate"}]})
    state = await _refactor(repo, "the plan", tmp_path, plan=plan, plan_source="plan file")
    assert state["status"] == "failed" and not state.get("attempts")
    assert state["reason"] == ("the plan cannot run: operation 2 (inline frobnicate): no module-level function or "
                               "variable 'frobnicate' in this repository")


async def test_a_rename_onto_an_existing_name_fails_before_any_edit(team: Team, repo: Path, tmp_path: Path) -> None:
    state = await _refactor(repo, "Rename load_inventory to total", tmp_path)
    assert state["status"] == "failed" and not state.get("attempts")
    assert "'total' is already defined beside shop.inventory.load_inventory" in state["reason"]


async def test_a_move_into_an_invalid_module_path_fails_before_any_edit(team: Team, repo: Path, tmp_path: Path) -> None:
    state = await _refactor(repo, "Move total into new module nowhere.money", tmp_path)
    assert state["status"] == "failed"
    assert "its package 'nowhere' does not exist" in state["reason"]


async def test_a_model_plan_that_covers_the_request_succeeds(team: Team, repo: Path, tmp_path: Path) -> None:
    team.use("planner", [rename()])
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "Please make load_inventory go by read_inventory everywhere", tmp_path)
    assert (state["plan_source"], state["uncovered"]) == ("model", [])
    assert state["status"] == "succeeded", state.get("reason")


async def test_an_operation_on_a_name_an_earlier_one_creates_is_checked_as_it_ran(
    team: Team, repo: Path, tmp_path: Path
) -> None:
    team.use("verifier", [PASSED])
    plan = Plan(operations=[Rename(old="total", new="grand_total"), Move(symbols=["grand_total"], to_module="shop.sums")])
    state = await _refactor(repo, "the plan", tmp_path, plan=plan, plan_source="plan file")
    assert state["status"] == "succeeded", state.get("reason")
    assert state["attempts"][-1].plan.operations[1].from_module == "shop.inventory"


async def test_a_plan_sent_as_json_is_read_and_a_bad_one_fails_with_its_reason(team: Team, repo: Path, tmp_path: Path) -> None:
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "the plan", tmp_path, plan_source="plan file",
                            plan={"operations": [{"op": "rename", "old": "load_inventory", "new": "read_inventory"}]})
    assert state["status"] == "succeeded", state.get("reason")
    state = await _refactor(repo, "the plan", tmp_path / "again", plan={"operations": [{"op": "rename", "old": "x"}]})
    assert state["status"] == "failed"
    assert state["reason"].startswith("the plan given is not a valid plan: operation 1 (rename), field new: ")


async def test_a_rename_then_type_hints_on_it_runs_from_plain_words(team: Team, repo: Path, tmp_path: Path) -> None:
    planner = team.use("planner", [])
    team.use("verifier", [PASSED])
    state = await _refactor(repo, "Rename load_inventory to read_inventory and add type hints to it", tmp_path)
    assert state["status"] == "succeeded", state.get("reason")
    assert state["plan_source"] == "phrasing" and planner.calls == []
    assert state["plan"].describe() == ["rename load_inventory → read_inventory",
                                        "add type hints to read_inventory (mypy typed-defs)"]
    patch = Path(state["patch"]).read_text()
    # the tests pass pytest's untyped `tmp_path`, so mypy saw no type for `path`
    assert "+def read_inventory(path: Any) -> dict[str, str]:" in patch and "+from typing import Any" in patch
    assert "+def total(path):" not in patch  # not a target


async def test_a_plan_files_edit_instruction_is_what_the_coder_is_asked(team: Team, repo: Path, tmp_path: Path) -> None:
    coder = team.use("coder", [code('def total(path):\n    """Sum of all stock counts."""\n'
                                    "    return sum(int(v) for v in load_inventory(path).values())\n")])
    team.use("verifier", [PASSED])
    plan = parse_plan({"operations": [{"op": "edit", "symbol": "total", "instruction": "give total a docstring"}]})
    state = await _refactor(repo, "the plan file", tmp_path, plan=plan, plan_source="plan file")
    assert state["status"] == "succeeded", state.get("reason")
    asked = coder.calls[0][-1]["content"]
    assert "In total: give total a docstring" in asked and "the plan file" not in asked


async def test_a_model_plan_that_renames_when_no_new_name_was_asked_for_is_refused(
    team: Team, repo: Path, tmp_path: Path
) -> None:
    team.use("planner", [rename("total", "tidy")])  # a plain word, not a name written like code
    state = await _refactor(repo, "Clean up total so that it is tidy", tmp_path)
    assert state["status"] == "failed"
    assert state["reason"] == "the planner misread the request: the plan renames, but the request does not ask for a new name"
