"""Each refactoring operation: it does what it says, and its postcondition catches a tree
where it does not (every test that applies an operation then breaks the result on purpose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.refactor_repo import write_files
from turnout.tools.codemods import CodemodError
from turnout.tools.operations import (
    ChangeSignature,
    ConvertFormatting,
    Edit,
    Extract,
    Inline,
    Move,
    NewParameter,
    Operation,
    Plan,
    Rename,
)
from turnout.tools.operations._base import NotFound, read_tree
from turnout.tools.operations.running import apply_plan, check_plan, plan_postconditions

FILES = {
    "shop/__init__.py": 'from shop.inventory import load_inventory\n\n__all__ = ["load_inventory"]\n',
    "shop/inventory.py": (
        "def load_inventory(path):\n"
        "    return dict(line.split('=') for line in open(path).read().split())\n\n\n"
        "def total(path, scale=1):\n"
        "    counts = load_inventory(path)\n"
        "    values = [int(v) for v in counts.values()]\n"
        "    return sum(values) * scale\n\n\n"
        "class Ledger:\n"
        "    def add_line(self, line):\n"
        "        return line.upper()\n\n\n"
        "def label(name, count):\n"
        "    return '%s: %s' % (name, count)\n"
    ),
    "tests/test_shop.py": (
        "from shop import load_inventory\nfrom shop.inventory import Ledger, label, total\n\n\n"
        "def test_all(tmp_path):\n    p = tmp_path / 's.txt'\n    p.write_text('a=1 b=2')\n"
        "    assert load_inventory(p) == {'a': '1', 'b': '2'}\n    assert total(p) == 3\n"
        "    assert Ledger().add_line('x') == 'X'\n    assert label('a', 1) == 'a: 1'\n"
    ),
    "setup.py": "print('version {0}'.format(1))\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write_files(tmp_path / "shop_repo", FILES)


def run(op: Operation, root: Path) -> Operation:
    checked, problems = check_plan(Plan(operations=[op]), root)
    assert not problems, problems.describe()
    apply_plan(checked, root)
    return checked.operations[0]


def suite_passes(root: Path) -> bool:
    """The fixture's tests pass with deprecation warnings as errors (and none of this
    environment's pytest plugins, which may warn on their own)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::DeprecationWarning"],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    return done.returncode == 0


def append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(path.read_text() + text)


def test_rename_holds_and_a_use_of_the_old_name_breaks_it(shop: Path) -> None:
    op = run(Rename(old="load_inventory", new="read_inventory"), shop)
    assert op.postcondition(shop, None) == [] and suite_passes(shop)
    assert "load_inventory" not in (shop / "shop" / "__init__.py").read_text()
    append(shop, "shop/inventory.py", "\nOLD = load_inventory\n")
    [problem] = op.postcondition(shop, None)
    assert "code still uses the old name 'load_inventory' at shop/inventory.py:" in problem


@pytest.mark.parametrize("keep_alias", ["plain", "deprecated"])
def test_an_alias_is_the_renamed_object_and_warns_only_when_deprecated(shop: Path, keep_alias: str) -> None:
    op = run(Rename(old="load_inventory", new="read_inventory", keep_alias=keep_alias), shop)  # type: ignore[arg-type]
    assert op.postcondition(shop, None) == []
    listed = '"read_inventory", "load_inventory"' in (shop / "shop" / "__init__.py").read_text()
    assert listed == (keep_alias == "plain")  # a deprecated name in __all__ would warn on `import *`
    probe = ("import warnings, shop, shop.inventory as inv\nwarnings.simplefilter('error')\n"
             "assert shop.load_inventory is shop.read_inventory is inv.load_inventory\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=shop, capture_output=True, text=True)
    assert (done.returncode == 0) == (keep_alias == "plain"), done.stderr
    if keep_alias == "deprecated":
        assert "DeprecationWarning: load_inventory is deprecated; use read_inventory" in done.stderr


def test_a_deprecated_alias_that_stops_warning_is_caught(shop: Path) -> None:
    op = run(Rename(old="load_inventory", new="read_inventory", keep_alias="deprecated"), shop)
    init = shop / "shop" / "__init__.py"
    init.write_text(init.read_text().replace("warnings.warn(", "(lambda *a, **k: None)("))
    assert op.postcondition(shop, None) == ["shop.load_inventory does not warn (DeprecationWarning)"]


def test_an_alias_that_is_gone_is_caught(shop: Path) -> None:
    op = run(Rename(old="load_inventory", new="read_inventory", keep_alias="plain"), shop)
    for rel in ("shop/__init__.py", "shop/inventory.py"):
        path = shop / rel
        path.write_text(path.read_text().replace("\nload_inventory = read_inventory\n", "\n"))
    problems = op.postcondition(shop, None)
    assert any("shop.load_inventory cannot be read" in p for p in problems), problems


def test_a_method_rename_keeps_a_deprecated_wrapper(shop: Path) -> None:
    op = run(Rename(old="Ledger.add_line", new="append_line", keep_alias="deprecated"), shop)
    assert op.postcondition(shop, None) == []
    probe = "import warnings\nfrom shop.inventory import Ledger\nwith warnings.catch_warnings(record=True) as w:\n" \
            "    warnings.simplefilter('always')\n    assert Ledger().add_line('q') == 'Q'\nassert w[0].category is DeprecationWarning\n"
    assert subprocess.run([sys.executable, "-c", probe], cwd=shop).returncode == 0


@pytest.mark.parametrize("keep_alias", ["none", "plain", "deprecated"])
def test_a_renamed_module_keeps_its_old_path_as_the_same_module(shop: Path, keep_alias: str) -> None:
    op = run(Rename(old="shop.inventory", new="stock", keep_alias=keep_alias), shop)  # type: ignore[arg-type]
    assert op.postcondition(shop, None) == [] and suite_passes(shop)
    assert "from shop.stock import load_inventory" in (shop / "shop" / "__init__.py").read_text()
    assert (shop / "shop" / "inventory.py").is_file() == (keep_alias != "none")
    if keep_alias == "none":
        append(shop, "shop/__init__.py", "import shop.inventory\n")
        assert op.postcondition(shop, None) == ["code still imports shop.inventory at shop/__init__.py:4"]
        return
    probe = ("import warnings\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
             "    import shop.inventory as old\n    from shop.inventory import Ledger\nimport shop.stock as new\n"
             "assert old is new and Ledger is new.Ledger\n"
             "assert [str(x.message) for x in w] == ([] if 'plain' in __import__('sys').argv else "
             "['shop.inventory is deprecated; import shop.stock instead'])\n")
    assert subprocess.run([sys.executable, "-c", probe, keep_alias], cwd=shop).returncode == 0
    (shop / "shop" / "inventory.py").write_text("from shop.stock import *\n")  # a copy, not the module itself
    assert op.postcondition(shop, None) == ["importing shop.inventory does not give shop.stock"]


def test_a_renamed_package_keeps_no_alias(shop: Path) -> None:
    with pytest.raises(CodemodError, match="shop is a package; turnout keeps an alias for a renamed module, not a package"):
        Rename(old="shop", new="store", keep_alias="plain").checked(read_tree(shop))


def test_renames_onto_a_taken_name_or_of_a_missing_one_are_refused_before_any_edit(shop: Path) -> None:
    tree = read_tree(shop)
    with pytest.raises(CodemodError, match="'total' is already defined beside shop.inventory.load_inventory"):
        Rename(old="load_inventory", new="total").checked(tree)
    with pytest.raises(NotFound, match="no definition of 'frobnicate'"):
        Rename(old="frobnicate", new="x").checked(tree)


def test_move_into_a_new_module_keeps_every_old_path_and_pickles(shop: Path) -> None:
    op = run(Move(symbols=["total", "Ledger"], to_module="shop.money"), shop)
    assert op.from_module == "shop.inventory"  # resolved by the check
    assert op.postcondition(shop, None) == [] and suite_passes(shop)
    source = shop / "shop" / "inventory.py"
    source.write_text(source.read_text().replace("return shop.money.Ledger", "return None"))  # the lazy re-export
    problems = op.postcondition(shop, None)
    assert "shop.inventory.Ledger is not shop.money.Ledger" in problems
    assert "a pickle naming shop.inventory.Ledger loads something else" in problems


def test_a_move_that_makes_an_import_cycle_is_caught(shop: Path) -> None:
    op = run(Move(symbols=["label"], to_module="shop.labels"), shop)
    assert op.postcondition(shop, None) == []
    append(shop, "shop/labels.py", "\nfrom shop.inventory import CYCLE  # noqa\n")
    append(shop, "shop/inventory.py", "\nfrom shop.labels import label as _again  # noqa\nCYCLE = 1\n")
    problems = op.postcondition(shop, None)
    assert any("does not import on its own" in p or "could not be checked" in p for p in problems), problems


@pytest.mark.parametrize("target, message", [
    ("nowhere.sub.mod", "its package 'nowhere.sub' does not exist"),
    ("shop.inventory", "already in shop.inventory"),
])
def test_moves_that_cannot_be_made_are_refused(shop: Path, target: str, message: str) -> None:
    with pytest.raises(CodemodError, match=message):
        Move(symbols=["total"], to_module=target).checked(read_tree(shop))


def test_formatting_converts_every_file_and_a_site_left_is_caught(shop: Path) -> None:
    op = run(ConvertFormatting(), shop)
    assert op.postcondition(shop, None) == []
    assert "f'{name}: {count}'" in (shop / "shop" / "inventory.py").read_text() or \
        'f"{name}: {count}"' in (shop / "shop" / "inventory.py").read_text()
    assert "format" not in (shop / "setup.py").read_text()  # UP030 then UP032: "{0}".format(1)
    append(shop, "shop/inventory.py", "\nLATE = 'x %s' % 1\n")
    [problem] = op.postcondition(shop, None)
    assert problem.startswith("1 string-formatting call(s) left: shop/inventory.py:")


def test_a_formatting_site_ruff_cannot_rewrite_is_reported_not_passed(shop: Path) -> None:
    append(shop, "shop/inventory.py", "\nFIELDS = {'a': 1}\nWIDTH = '{a}'.format(**FIELDS)\n")
    op = run(ConvertFormatting(), shop)
    problems = op.postcondition(shop, None)
    assert len(problems) == 1 and "shop/inventory.py:" in problems[0], problems


def test_extract_makes_a_typed_helper_the_original_calls(shop: Path) -> None:
    inventory = shop / "shop" / "inventory.py"
    inventory.write_text(inventory.read_text().replace("def total(path, scale=1):", "def total(path: str, scale: int = 1):"))
    op = run(Extract(path="shop/inventory.py", start_line=6, end_line=7, new_name="counted_values"), shop)
    assert op.function == "total" and op.postcondition(shop, None) == [] and suite_passes(shop)
    assert "def counted_values(path: str)" in inventory.read_text()
    inventory.write_text(inventory.read_text().replace("= counted_values(path)", "= []"))
    assert op.postcondition(shop, None) == ["total does not call counted_values"]


def test_extract_refuses_lines_that_are_not_whole_statements_of_one_function(shop: Path) -> None:
    with pytest.raises(CodemodError, match="not whole statements inside one function"):
        Extract(path="shop/inventory.py", start_line=4, end_line=6, new_name="x").checked(read_tree(shop))


def test_inline_removes_the_name_and_a_use_left_is_caught(shop: Path) -> None:
    op = run(Inline(name="label"), shop)
    assert op.postcondition(shop, None) == [] and "def label" not in (shop / "shop" / "inventory.py").read_text()
    append(shop, "shop/inventory.py", "\ndef label(): ...\n")
    assert op.postcondition(shop, None)[0].startswith("label is still defined or used at shop/inventory.py:")


def test_change_signature_adds_removes_and_a_reverted_definition_is_caught(shop: Path) -> None:
    op = run(ChangeSignature(function="total", add=[NewParameter(name="strict", default="False")], remove=["scale"]), shop)
    inventory = shop / "shop" / "inventory.py"
    assert "def total(path, strict=False):" in inventory.read_text()
    assert op.postcondition(shop, None) == []
    inventory.write_text(inventory.read_text().replace("def total(path, strict=False):", "def total(path, scale=1):"))
    assert op.postcondition(shop, None) == ["total still has the parameter scale", "total has no parameter strict"]


def test_a_file_that_does_not_parse_and_names_the_symbol_stops_the_plan(shop: Path) -> None:
    (shop / "shop" / "broken.py").write_text("def broken(:\n    load_inventory()\n")
    _plan, problems = check_plan(Plan(operations=[Rename(old="load_inventory", new="read_inventory")]), shop)
    assert "shop/broken.py does not parse and mentions 'load_inventory'" in problems.describe()


def test_later_operations_may_name_what_earlier_ones_create(shop: Path) -> None:
    plan = Plan(operations=[Rename(old="total", new="grand_total"), Move(symbols=["grand_total"], to_module="shop.sums")])
    checked, problems = check_plan(plan, shop)
    assert not problems
    applied = apply_plan(checked, shop)
    assert plan_postconditions(Plan(operations=applied.operations), shop, None) == []
    assert suite_passes(shop)


def test_a_model_edit_has_no_executor_and_checks_its_symbol(shop: Path) -> None:
    assert Edit(symbol="total").checked(read_tree(shop)).needs_model
    with pytest.raises(NotFound):
        Edit(symbol="nothing_here").checked(read_tree(shop))


def test_a_namespace_that_rebinds_the_old_name_is_renamed_too(shop: Path) -> None:
    (shop / "shop" / "curried.py").write_text(
        "import functools\n\nimport shop.inventory\n\nlabel = functools.partial(shop.inventory.label, 'x')\n")
    op = run(Rename(old="label", new="tag"), shop)
    assert "tag = functools.partial(shop.inventory.tag, 'x')" in (shop / "shop" / "curried.py").read_text()
    assert op.postcondition(shop, None) == []


def test_a_deprecated_alias_reaches_packages_that_star_import_it(shop: Path) -> None:
    (shop / "shop" / "__init__.py").write_text("from shop.inventory import *  # noqa: F403\n")
    append(shop, "shop/inventory.py", '\n__all__ = ["load_inventory", "total", "label", "Ledger"]\n')
    op = run(Rename(old="load_inventory", new="read_inventory", keep_alias="deprecated"), shop)
    assert op.postcondition(shop, None) == []
    probe = "import warnings\nwarnings.simplefilter('error')\nimport shop\nfrom shop import *\nassert read_inventory\n"
    assert subprocess.run([sys.executable, "-c", probe], cwd=shop).returncode == 0  # `import *` does not warn
    probe = "import warnings\nwarnings.simplefilter('error')\nfrom shop import load_inventory\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=shop, capture_output=True, text=True)
    assert "DeprecationWarning: load_inventory is deprecated; use read_inventory" in done.stderr


def test_a_moved_function_goes_after_what_its_annotations_use(shop: Path) -> None:
    (shop / "shop" / "models.py").write_text("import dataclasses\n\n\n@dataclasses.dataclass\nclass Count:\n    n: int\n")
    inventory = shop / "shop" / "inventory.py"
    inventory.write_text(inventory.read_text() + "\n\nfrom shop.models import Count\n\n\n"
                         "def counted(n: int) -> Count:\n    return Count(n)\n")
    op = run(Move(symbols=["counted"], to_module="shop.models"), shop)
    models = (shop / "shop" / "models.py").read_text()
    assert models.index("class Count") < models.index("def counted")
    assert op.postcondition(shop, None) == [] and suite_passes(shop)


def test_moving_several_names_into_a_module_that_imports_the_old_one_keeps_imports_acyclic(shop: Path) -> None:
    (shop / "shop" / "__init__.py").write_text("")  # nothing imports shop.inventory before shop.sums
    tests = shop / "tests" / "test_shop.py"
    tests.write_text(tests.read_text().replace("from shop import load_inventory", "from shop.inventory import load_inventory"))
    op = run(Move(symbols=["total", "label"], to_module="shop.sums"), shop)  # total uses load_inventory
    assert op.postcondition(shop, None) == [] and suite_passes(shop)
    assert "def __getattr__" in (shop / "shop" / "inventory.py").read_text()  # the lazy re-export kept
