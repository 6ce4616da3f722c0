"""add_type_hints: types mypy infers from the repository's own calls, written with the imports
they need, and a postcondition that holds only when mypy accepts the targets at the plan's
strictness (each test that applies the operation then breaks the result on purpose)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.refactor_repo import write_files
from turnout.tools.codemods import CodemodError
from turnout.tools.operations import AddTypeHints, Plan
from turnout.tools.operations._base import NotFound, read_tree
from turnout.tools.operations.running import apply_plan, check_plan
from turnout.tools.operations._inferred_types import importable_names, type_source

FILES = {
    "calc/__init__.py": "",
    "calc/cart.py": (
        "from decimal import Decimal\n\n\n"
        "class Cart:\n"
        "    def __init__(self, items):\n"
        "        self.items = items\n\n"
        "    def total(self, discount=0):\n"
        "        return sum(self.items) - discount\n\n\n"
        "def scale(values, factor):\n"
        "    return [v * factor for v in values]\n\n\n"
        "def money(amount):\n"
        "    return Decimal(amount)\n\n\n"
        "def merged(*parts, **options):\n"
        "    return [p for p in parts if p not in options]\n\n\n"
        "def label(name) -> str:\n"
        "    return str(name)\n"
    ),
    "tests/test_cart.py": (
        "from calc.cart import Cart, label, merged, money, scale\n\n\n"
        "def test_it():\n"
        "    assert Cart([1, 2]).total(1) == 2\n"
        "    assert scale([1.0, 2.0], 2.0) == [2.0, 4.0]\n"
        "    assert money('1.5') == money('1.50')\n"
        "    assert merged('a', 'b', b=1) == ['a']\n"
        "    assert label(3) == '3'\n"
    ),
}


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    return write_files(tmp_path / "calc_repo", FILES)


def run(op: AddTypeHints, root: Path) -> tuple[AddTypeHints, list[str]]:
    checked, problems = check_plan(Plan(operations=[op]), root)
    assert not problems, problems.describe()
    applied = apply_plan(checked, root)
    resolved = applied.operations[0]
    assert isinstance(resolved, AddTypeHints)
    return resolved, applied.notes


def replace(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def test_types_come_from_the_callers_and_mypy_accepts_them(calc: Path) -> None:
    op, notes = run(AddTypeHints(targets=["calc.cart"]), calc)
    text = (calc / "calc/cart.py").read_text()
    assert op.targets == ["calc/cart.py"]
    assert "def __init__(self, items: list[int]) -> None:" in text
    assert "def total(self, discount: int = 0) -> int:" in text  # the method's return, on the second look
    assert "def scale(values: list[float], factor: float) -> list[float]:" in text
    assert "def money(amount: str) -> Decimal:" in text and "from calc.cart import" not in text
    assert "def merged(*parts: Any, **options: Any) -> list[Any]:" in text  # libcst's visitor leaves star parameters
    assert "def label(name: int) -> str:" in text  # a hint the code had is kept
    assert notes == ["annotated 6 function(s): 6 with the types mypy infers from their callers and bodies",
                     "1 of those use Any somewhere (mypy saw no typed caller): calc/cart.py:merged"]
    assert op.postcondition(calc, None) == []
    assert subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=calc,
                          capture_output=True).returncode == 0

    replace(calc, "calc/cart.py", "def scale(values: list[float], factor: float) -> list[float]:",
            "def scale(values: list[float], factor: float) -> str:")
    assert any("mypy (typed-defs) reports 1 error(s)" in m and "calc/cart.py:14: error: Incompatible return value" in m
               for m in op.postcondition(calc, None))
    replace(calc, "calc/cart.py", "def scale(values: list[float], factor: float) -> str:", "def scale(values, factor):")
    missing = op.postcondition(calc, None)
    assert missing[0] == "1 function(s) still without full type hints: calc/cart.py:scale"


def test_a_symbol_target_types_that_symbol_and_is_checked_alone(calc: Path) -> None:
    op, _notes = run(AddTypeHints(targets=["scale"], strictness="strict"), calc)
    text = (calc / "calc/cart.py").read_text()
    assert op.targets == ["calc/cart.py:scale"]
    assert "def scale(values: list[float], factor: float) -> list[float]:" in text
    assert "def money(amount):" in text  # not a target: untouched, and its missing hints are not counted
    assert op.postcondition(calc, None) == []


def test_strict_is_stricter_than_typed_defs(calc: Path) -> None:
    replace(calc, "calc/cart.py", "def scale(values, factor):", "def scale(values: list, factor: float) -> list:")
    assert AddTypeHints(targets=["calc/cart.py:scale"], strictness="typed-defs").postcondition(calc, None) == []
    missing = AddTypeHints(targets=["calc/cart.py:scale"], strictness="strict").postcondition(calc, None)
    assert len(missing) == 1 and "calc/cart.py:12: error:" in missing[0] and "[type-arg]" in missing[0]


def test_targets_that_name_nothing_or_several_things_are_refused(calc: Path) -> None:
    tree = read_tree(calc)
    assert AddTypeHints(targets=["Cart.total", "calc/", "calc/cart.py:Cart"]).checked(tree).targets == [
        "calc/cart.py:Cart.total", "calc/", "calc/cart.py:Cart"]
    with pytest.raises(NotFound, match="'nowhere' is not a file, module, function or class here"):
        AddTypeHints(targets=["nowhere"]).checked(tree)
    with pytest.raises(NotFound, match="calc/cart.py defines no function or class 'Basket'"):
        AddTypeHints(targets=["calc/cart.py:Basket"]).checked(tree)
    (calc / "calc/other.py").write_text("def scale(x):\n    return x\n")
    with pytest.raises(CodemodError, match="'scale' names several things"):
        AddTypeHints(targets=["scale"]).checked(read_tree(calc))


@pytest.mark.parametrize("suggested, python, written", [
    ("calc.cart.Decimal", (3, 11), "Decimal"),  # a name of the module itself, without importing it from itself
    ("Callable[[Any], Any]", (3, 11), "typing.Callable[[typing.Any], typing.Any]"),
    ("Tuple[int, str] | None", (3, 11), "tuple[int, str] | None"),
    ("int | str", (3, 9), "typing.Union[int, str]"),
    ("os._Environ[str]", (3, 11), None),  # another module's private name: nothing to import
    ("Frobnicator", (3, 11), None),  # a bare name nobody can import
])
def test_how_mypys_spelling_of_a_type_becomes_source(suggested: str, python: tuple[int, int], written: str | None) -> None:
    assert type_source(suggested, "calc.cart", {"Decimal", "Cart"}, python) == written


def test_a_type_only_typeshed_knows_is_not_written(calc: Path) -> None:
    # texttable 1.7.0: mypy suggested `typing_extensions.Buffer`, which its environment could not import
    suggestions = {"calc/cart.py:money": {"arg_types": ["typing_extensions.Nonexistent | decimal.Decimal"], "return_type": "str"}}
    importable = importable_names(calc, None, suggestions)
    assert importable == {"decimal.Decimal"}
    assert type_source("typing_extensions.Nonexistent | decimal.Decimal", "calc.cart", set(), (3, 11), importable) is None
    assert type_source("decimal.Decimal", "calc.cart", set(), (3, 11), importable) == "decimal.Decimal"
