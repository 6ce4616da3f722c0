"""Codemods on small packages written into tmp_path, and on a copy of examples/sample_repo."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from turnout.tools import CodemodError, available_codemods, convert_to_fstrings, move_function, rename_symbol

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"

SHOP = {
    "shop/__init__.py": '''
        """A shop."""
        from shop.core import Invoice, compute_total

        __all__ = ["Invoice", "compute_total"]
        ''',
    "shop/core.py": '''
        """Totals and invoices.

        >>> compute_total([1, 2])
        3
        """


        def compute_total(values):
            """Sum the values; see also Invoice.total."""
            return sum(values)


        class Invoice:
            def __init__(self):
                self.lines = []

            def add_line(self, price):
                self.lines.append(price)

            def total(self):
                return compute_total(self.lines)
        ''',
    "shop/core.pyi": '''
        def compute_total(values: list[int]) -> int: ...

        class Invoice:
            lines: list[int]
            def add_line(self, price: int) -> None: ...
            def total(self) -> int: ...
        ''',
    "shop/report.py": '''
        from shop import core
        from shop.core import compute_total


        def report(values):
            label = "compute_total adds the values"
            return f"{label}: {compute_total(values)} = {core.compute_total(values)}"
        ''',
    "shop/cli.py": '''
        from shop import Invoice, compute_total


        def main(price):
            invoice: Invoice = Invoice()
            invoice.add_line(price)
            return compute_total([invoice.total()])
        ''',
    "README.md": '''
        # shop

        Call compute_total() to add prices.
        ''',
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text()


def run_python(root: Path, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
                          capture_output=True, text=True, cwd=root, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write(tmp_path / "repo", SHOP)


def test_rename_function_updates_modules_all_doctests_and_stub_and_reports_the_readme(shop: Path) -> None:
    result = rename_symbol(shop, "compute_total", "sum_prices")

    assert result.changed_files == ["shop/__init__.py", "shop/cli.py", "shop/core.py", "shop/core.pyi",
                                    "shop/report.py"]
    assert '__all__ = ["Invoice", "sum_prices"]' in read(shop, "shop/__init__.py")
    assert ">>> sum_prices([1, 2])" in read(shop, "shop/core.py")
    assert "def sum_prices(values: list[int]) -> int: ..." in read(shop, "shop/core.pyi")
    assert "{sum_prices(values)} = {core.sum_prices(values)}" in read(shop, "shop/report.py")
    assert [(m.path, m.line) for m in result.remaining] == [("README.md", 3), ("shop/report.py", 6)]
    assert "compute_total" in read(shop, "README.md")
    assert run_python(shop, "import shop.report, shop.cli; print(shop.report.report([1, 2]), shop.cli.main(4))") \
        == "compute_total adds the values: 3 = 3 4"


def test_rename_class_updates_imports_annotations_and_all(shop: Path) -> None:
    write(shop, {"shop/title.py": 'from shop.core import Invoice\n\nTITLE = f"Invoice: {Invoice.__name__}"\n'})

    result = rename_symbol(shop, "Invoice", "Bill")

    assert 'TITLE = f"Invoice: {Bill.__name__}"' in read(shop, "shop/title.py")  # rope's docs mode wrote "Bill: "
    assert "invoice: Bill = Bill()" in read(shop, "shop/cli.py")
    assert "class Bill:" in read(shop, "shop/core.pyi")
    assert '__all__ = ["Bill", "compute_total"]' in read(shop, "shop/__init__.py")
    assert [m.path for m in result.remaining] == ["shop/title.py"]
    assert run_python(shop, "import shop.cli; print(shop.cli.main(2))") == "2"


def test_rename_method_follows_overrides_super_and_typed_receivers(shop: Path) -> None:
    write(shop, {"shop/special.py": '''
        from shop.core import Invoice


        class TaxedInvoice(Invoice):
            def add_line(self, price):
                super().add_line(price * 2)


        def fill(invoice: TaxedInvoice, anything):
            invoice.add_line(1)
            anything.add_line(2)
        '''})

    result = rename_symbol(shop, "Invoice.add_line", "append_line")

    special = read(shop, "shop/special.py")
    assert "def append_line(self, price):" in special and "super().append_line(price * 2)" in special
    assert "invoice.append_line(1)" in special
    assert "def append_line(self, price: int) -> None: ..." in read(shop, "shop/core.pyi")
    assert "invoice.append_line(price)" in read(shop, "shop/cli.py")
    assert [m.text for m in result.remaining] == ["anything.add_line(2)"]


def test_rename_module_by_dotted_path_updates_imports_and_moves_the_stub(shop: Path) -> None:
    result = rename_symbol(shop, "shop.core", "shop.billing")

    assert not (shop / "shop/core.py").exists() and not (shop / "shop/core.pyi").exists()
    assert (shop / "shop/billing.py").is_file() and (shop / "shop/billing.pyi").is_file()
    assert "from shop.billing import Invoice, compute_total" in read(shop, "shop/__init__.py")
    assert "from shop import billing" in read(shop, "shop/report.py")
    assert "shop/core.py" in result.changed_files and "shop/billing.py" in result.changed_files
    assert run_python(shop, "import shop.report; print(shop.report.report([2]))") == \
        "compute_total adds the values: 2 = 2"


def test_ambiguous_name_lists_every_definition(shop: Path) -> None:
    write(shop, {"shop/other.py": "def compute_total(values):\n    return 0\n"})

    with pytest.raises(CodemodError, match=r"ambiguous: function shop\.core\.compute_total \(shop/core\.py:8\); "
                                           r"function shop\.other\.compute_total \(shop/other\.py:1\)"):
        rename_symbol(shop, "compute_total", "sum_prices")


def test_path_picks_one_of_several_definitions(shop: Path) -> None:
    write(shop, {"shop/other.py": "def compute_total(values):\n    return 0\n"})

    result = rename_symbol(shop, "compute_total", "zero", path="shop/other.py")

    assert result.changed_files == ["shop/other.py"]
    assert "def compute_total(values):" in read(shop, "shop/core.py")


def test_unknown_name_is_an_error(shop: Path) -> None:
    with pytest.raises(CodemodError, match=r"no definition of 'compute_totals' in "):
        rename_symbol(shop, "compute_totals", "sum_prices")


@pytest.mark.parametrize("new", ["9lives", "class", "sum-prices", "sum prices"])
def test_invalid_new_name_is_an_error(shop: Path, new: str) -> None:
    with pytest.raises(CodemodError, match="identifier|keyword"):
        rename_symbol(shop, "compute_total", new)
    assert read(shop, "shop/core.py") == textwrap.dedent(SHOP["shop/core.py"]).lstrip("\n")


def test_new_name_already_defined_in_the_same_scope_is_an_error(shop: Path) -> None:
    with pytest.raises(CodemodError, match=r"'total' is already defined in class Invoice"):
        rename_symbol(shop, "Invoice.add_line", "total")


def test_move_function_keeps_old_imports_working(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "shop/__init__.py": "from shop.core import compute_total\n",
        "shop/core.py": '''
            """Totals."""
            __all__ = ["TAX", "compute_total", "taxed"]

            TAX = 2


            def compute_total(values):
                return sum(values) * TAX


            def taxed(values):
                return compute_total(values)
            ''',
        "shop/report.py": '''
            from shop import core
            from shop.core import compute_total


            def report(values):
                return compute_total(values) + core.compute_total(values)
            ''',
    })

    result = move_function(root, "compute_total", "shop/core.py", "shop.totals")

    assert result.changed_files == ["shop/__init__.py", "shop/core.py", "shop/report.py", "shop/totals.py"]
    assert "from shop.core import TAX\n" in read(root, "shop/totals.py")  # rope wrote `import __all__, TAX`
    assert '"compute_total"' in read(root, "shop/core.py")
    assert "from shop.totals import compute_total" in read(root, "shop/report.py")
    assert run_python(root, "import shop.core, shop.totals, shop.report\nfrom shop.core import compute_total\n"
                            "print(compute_total([1]), shop.totals.compute_total([2]), shop.core.taxed([3]),"
                            " shop.report.report([1]))") == "2 4 6 4"
    assert run_python(root, "import shop.totals; print(shop.totals.compute_total([5]))") == "10"


@pytest.mark.parametrize("first", ["shop", "shop.customers", "shop.reports", "shop.invoices"])
def test_move_into_a_module_that_imports_its_users_imports_in_any_order(tmp_path: Path, first: str) -> None:
    root = write(tmp_path, {
        "shop/__init__.py": "",
        "shop/customers.py": '''
            TIERS = {"gold": 100}


            def tier(spend):
                return "gold" if spend >= TIERS["gold"] else "bronze"
            ''',
        "shop/invoices.py": '''
            from shop.customers import tier


            def heading(spend):
                return f"{tier(spend)} customer"
            ''',
        "shop/reports.py": '''
            from shop.invoices import heading


            def report(spend):
                return heading(spend)
            ''',
    })

    result = move_function(root, "tier", "shop/customers.py", "shop.reports")

    assert "import shop.reports  # noqa: E402" in read(root, "shop/invoices.py")  # importing the name: a cycle
    assert any("call shop.reports.tier" in note for note in result.notes)
    assert run_python(root, f"import {first}, shop.reports, shop.customers\nfrom shop.customers import tier\n"
                            "print(shop.reports.report(150), tier(1))") == "gold customer bronze"


def test_convert_to_fstrings_rewrites_percent_and_format(tmp_path: Path) -> None:
    root = write(tmp_path, {"fmt.py": 'x = 3\na = "%s items" % x\nb = "{} left".format(x)\n',
                            "plain.py": 'c = "no formatting"\n'})

    result = convert_to_fstrings(root)

    assert read(root, "fmt.py") == 'x = 3\na = f"{x} items"\nb = f"{x} left"\n'
    assert result.changed_files == ["fmt.py"]


def test_rename_that_breaks_parsing_is_rolled_back(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rope.base.change import ChangeContents
    from rope.refactor.rename import Rename

    real = Rename.get_changes

    def broken(self, *args, **kwargs):  # rope producing a draft that does not parse
        changes = real(self, *args, **kwargs)
        for change in changes.changes:
            if isinstance(change, ChangeContents) and change.resource.path == "shop/cli.py":
                change.new_contents += "\ndef (:\n"
        return changes

    monkeypatch.setattr(Rename, "get_changes", broken)
    before = {p: p.read_bytes() for p in shop.rglob("*") if p.is_file()}

    with pytest.raises(CodemodError, match=r"left shop/cli\.py \(line \d+: invalid syntax\) unparsable"):
        rename_symbol(shop, "compute_total", "sum_prices")
    assert {p: p.read_bytes() for p in shop.rglob("*") if p.is_file()} == before


def test_failed_package_rename_moves_the_package_back(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(shop, {"shop/sub/__init__.py": "X = 1\n", "shop/sub/data.txt": "kept\n",
                 "shop/use.py": "from shop.sub import X\n"})

    def boom(*args: object) -> list[str]:
        raise RuntimeError("boom")

    monkeypatch.setattr("turnout.tools._rename.sweep", boom)  # fails after rope moved the package

    with pytest.raises(RuntimeError, match="boom"):
        rename_symbol(shop, "shop.sub", "inner")
    assert read(shop, "shop/sub/data.txt") == "kept\n" and not (shop / "shop/inner").exists()
    assert read(shop, "shop/use.py") == "from shop.sub import X\n"


def test_sample_repo_rename_keeps_its_tests_passing(tmp_path: Path) -> None:
    repo = tmp_path / "sample_repo"
    shutil.copytree(SAMPLE_REPO, repo, ignore=shutil.ignore_patterns(".turnout", ".pytest_cache", "__pycache__"))

    result = rename_symbol(repo, "load_inventory", "read_inventory")

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo,
                           capture_output=True, text=True, check=False)
    assert tests.returncode == 0, tests.stdout[-2000:]
    grep = subprocess.run(["grep", "-rw", "--include=*.py", "load_inventory", "."], cwd=repo,
                          capture_output=True, text=True, check=False)
    assert grep.stdout == ""
    assert {m.path for m in result.remaining} == {"README.md"}
    assert not (repo / ".ropeproject").exists()


def test_available_codemods_describe_every_codemod() -> None:
    specs = {spec.name: spec for spec in available_codemods()}

    assert set(specs) == {"rename_symbol", "move_function", "convert_to_fstrings"}
    assert specs["move_function"].required == ["name", "from_path", "to_module"]
