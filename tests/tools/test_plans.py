"""Plans from words (no model), from plan files and from the command line, and the coverage
check that keeps a run whose plan misses part of the request from succeeding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnout.tools.operations import AddTypeHints, Move, Plan, PlanError, Rename, load_plan, plan_from_words
from turnout.tools.operations.phrasing import read_request, uncovered


@pytest.mark.parametrize("request_text, expected", [
    ("Rename load_inventory to read_inventory", ["rename load_inventory → read_inventory"]),
    ("load_inventory should be called read_inventory", ["rename load_inventory → read_inventory"]),
    ("Please rename the function `load_inventory` to `read_inventory`.", ["rename load_inventory → read_inventory"]),
    ("Rename a_x, b_y and c_z to x_a, y_b and z_c, keeping the old names as deprecated aliases",
     [f"rename {o} → {n} (old name kept as a deprecated alias)" for o, n in (("a_x", "x_a"), ("b_y", "y_b"), ("c_z", "z_c"))]),
    ("rename Ledger.add_line to append_line and keep the old name working",
     ["rename Ledger.add_line → append_line (old name kept as a plain alias)"]),
    ("Move total and Ledger from shop.inventory into new module shop.money",
     ["move total, Ledger from shop.inventory → shop.money"]),
    ("move total to shop.totals, then rename load_inventory to read_inventory",
     ["move total → shop.totals", "rename load_inventory → read_inventory"]),
    ("Convert all %-formatting and .format() calls to f-strings everywhere",
     ["convert string formatting to f-strings in every file"]),
    ("Convert string formatting to f-strings in shop/inventory.py",
     ["convert string formatting to f-strings in shop/inventory.py"]),
    ("I'd like dasherize renamed to hyphenate everywhere", ["rename dasherize → hyphenate"]),
    ("Rename the function called load_inventory to read_inventory", ["rename load_inventory → read_inventory"]),
    ("Convert the %-formatting and str.format() calls to f-strings", ["convert string formatting to f-strings in every file"]),
    ("Inline label", ["inline label"]),
    ("extract lines 6-7 of shop/inventory.py into counted_values", ["extract shop/inventory.py:6-7 → counted_values()"]),
    ("add parameter strict=False to total", ["change the signature of total: add strict=False"]),
    ("remove the parameter scale from total", ["change the signature of total: remove scale"]),
    ("Add type hints to shop/inventory.py", ["add type hints to shop/inventory.py (mypy typed-defs)"]),
    ("add type annotations to total and label, checked with mypy --strict", ["add type hints to total, label (mypy strict)"]),
    ("Add a docstring to total", ["model-written edit of total: add a docstring to total"]),
    ("Rename load_inventory to read_inventory and add type hints to it",
     ["rename load_inventory → read_inventory", "add type hints to read_inventory (mypy typed-defs)"]),
])
def test_common_phrasings_become_plans_without_a_model(request_text: str, expected: list[str]) -> None:
    reading = read_request(request_text)
    assert reading.plan is not None and reading.plan.describe() == expected
    assert not reading.problems and not reading.unread_changes()
    assert uncovered(request_text, reading.plan, {"load_inventory", "total", "label", "Ledger"}) == []


@pytest.mark.parametrize("request_text", ["Make total faster", "Extract this loop into a helper",
                                          "I'd like load_inventory to be known as read_inventory"])
def test_what_no_pattern_reads_goes_to_the_model(request_text: str) -> None:
    assert read_request(request_text).plan is None


def test_unequal_name_lists_are_a_problem_not_a_guess() -> None:
    reading = read_request("Rename a_x, b_y and c_z to x_a and y_b")
    assert reading.plan is None and reading.problems == ["3 old names and 2 new ones in 'Rename a_x, b_y and c_z to x_a and y_b'"]


@pytest.mark.parametrize("request_text, plan, missing", [
    ("Rename a_x, b_y and c_z to x_a, y_b and z_c", [Rename(old="a_x", new="x_a")],
     [f"{name}: named in the request, but no operation is about it" for name in ("b_y", "c_z", "y_b", "z_c")]),
    ("Rename load_inventory to read_inventory, keeping the old name as a deprecated alias",
     [Rename(old="load_inventory", new="read_inventory")],
     ["keep the old name as a deprecated alias: asked for, but no operation does it",
      "keep the old name as an alias: asked for, but no operation does it"]),
    ("Rename total to grand_total and add type hints", [Rename(old="total", new="grand_total")],
     ["add type hints: asked for, but no operation does it"]),
    ("Add a docstring to total", [Rename(old="total", new="docstring")],  # what the embedded planner answered once
     ["add a docstring: asked for, but no operation does it"]),
    ("Add type hints to total so that mypy --strict passes", [AddTypeHints(targets=["total"])],
     ["type hints that pass mypy --strict: asked for, but no operation does it"]),
    ("Extract the loop in total into a helper", [Rename(old="total", new="helper")],
     ["extract a function: asked for, but no operation does it"]),
    ("Move total into new module shop.money", [Move(symbols=["total"], to_module="shop.inventory")],
     ["shop.money: named in the request, but no operation is about it"]),
])
def test_a_plan_that_misses_part_of_the_request_is_caught(request_text: str, plan: list, missing: list[str]) -> None:
    assert uncovered(request_text, Plan(operations=plan), {"total", "load_inventory"}) == missing


def test_a_known_name_in_plain_words_counts_too() -> None:
    assert uncovered("rename a_x to x_a and tidy total", Plan(operations=[Rename(old="a_x", new="x_a")]), {"total"}) == [
        "total: named in the request, but no operation is about it"]


def test_a_plan_file_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "plan.toml"
    toml.write_text('[[operations]]\nop = "rename"\nold = "load"\nnew = "read"\nkeep_alias = "deprecated"\n\n'
                    '[[operations]]\nop = "move"\nsymbols = ["Money"]\nto_module = "shop.money"\n')
    as_json = tmp_path / "plan.json"
    as_json.write_text(json.dumps({"operations": [{"op": "rename", "old": "load", "new": "read", "keep_alias": "deprecated"},
                                                  {"op": "move", "symbols": ["Money"], "to_module": "shop.money"}]}))
    assert load_plan(toml) == load_plan(as_json)
    assert load_plan(toml).describe() == ["rename load → read (old name kept as a deprecated alias)", "move Money → shop.money"]


@pytest.mark.parametrize("text, message", [
    ('[[operations]]\nop = "frobnicate"\n', "operation 1: unknown operation 'frobnicate' (known: rename, move"),
    ('[[operations]]\nop = "rename"\nold = "a"\nnew = "b"\ncolour = "red"\n', "operation 1 (rename), field colour: unknown field"),
    ('[[operations]]\nold = "a"\n', "operation 1: an operation needs `op`"),
    ('[[operations]]\nop = "rename"\nold = "a"\nnew = "not valid"\n', "'not valid' is not a Python identifier"),
    ('[[operations]]\nop = "move"\nsymbols = ["a"]\nto_module = "shop/money.py"\n', "is not a name or dotted module path"),
    ('[[operations]]\nop = "add_type_hints"\ntargets = ["a"]\nstrictness = "pedantic"\n',
     "operation 1 (add_type_hints), field strictness: Input should be 'basic', 'typed-defs' or 'strict'"),
    ('operations = [\n', "does not parse as TOML"),
    ('steps = []\n', "operations: Field required; steps: unknown field"),
])
def test_a_bad_plan_file_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_the_command_line_form() -> None:
    assert plan_from_words(["rename", "load", "read"], keep_alias="deprecated").describe() == [
        "rename load → read (old name kept as a deprecated alias)"]
    assert plan_from_words(["move", "a", "b", "pkg.new"]).describe() == ["move a, b → pkg.new"]
    assert plan_from_words(["convert-formatting"]).describe() == ["convert string formatting to f-strings in every file"]
    assert plan_from_words(["add-type-hints", "shop/", "total"]).describe() == ["add type hints to shop/, total (mypy typed-defs)"]
    with pytest.raises(PlanError, match="rename takes: rename OLD NEW"):
        plan_from_words(["rename", "only_one"])
    with pytest.raises(PlanError, match="--keep-alias goes with rename only"):
        plan_from_words(["inline", "x"], keep_alias="plain")


def test_a_checked_move_covers_the_module_it_came_from() -> None:
    request = "units_sold belongs in shop.invoices: move it there from shop.reports"
    unchecked = Plan(operations=[Move(symbols=["units_sold"], to_module="shop.invoices")])
    checked = Plan(operations=[Move(symbols=["units_sold"], to_module="shop.invoices", from_module="shop.reports")])
    assert uncovered(request, unchecked) == ["shop.reports: named in the request, but no operation is about it"]
    assert uncovered(request, checked) == []


@pytest.mark.parametrize("request_text, unread", [
    ("Rename load_inventory to read_inventory and make it faster", ["make it faster: asked for, but no operation does it"]),
    ("Rename load_inventory to read_inventory so it reads clearer", []),
])
def test_a_change_asked_for_beside_a_pattern_is_unread_not_dropped(request_text: str, unread: list[str]) -> None:
    assert read_request(request_text).unread_changes() == unread
