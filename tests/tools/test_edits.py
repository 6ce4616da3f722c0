"""Typed edits: exact and whitespace-tolerant search/replace, unified diffs, whole definitions, and
the checks every edit passes (one match, still parses, stays inside the root)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from turnout.errors import ModelBehaviorError
from turnout.tools.edits import (
    EditError,
    EditReport,
    SearchReplace,
    apply_search_replace,
    apply_unified_diff,
    replace_definition,
)
from turnout.tools.workspace import Workspace

INVOICE = '''\
"""Invoices."""

TAX = 0.2


class Invoice:
    def __init__(self) -> None:
        self.lines: list[float] = []

    # Tax included.
    def total(self) -> float:
        return sum(self.lines) * (1 + TAX)

    @property
    def empty(self) -> bool:
        return not self.lines

    @empty.setter
    def empty(self, value: bool) -> None:
        self.lines = []


# Used by the app.
@staticmethod
def render(invoice: Invoice) -> str:
    return f"{invoice.total():.2f}"
'''


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "invoice.py").write_text(INVOICE)
    (root / "notes.txt").write_text("alpha\nbeta\nalpha\n")
    return root


def read(root: Path, rel: str = "billing/invoice.py") -> str:
    return (root / rel).read_text()


# -- search / replace ---------------------------------------------------------------------


def test_an_exact_search_block_is_replaced(root: Path) -> None:
    edit = SearchReplace(path="billing/invoice.py", search="TAX = 0.2\n", replace="TAX = 0.25\n")
    assert apply_search_replace(root, [edit]) == EditReport(changed=["billing/invoice.py"])
    assert "TAX = 0.25\n" in read(root) and "TAX = 0.2\n" not in read(root)


def test_a_search_block_with_other_indentation_matches_and_the_replacement_is_reindented(root: Path) -> None:
    search = "def total(self) -> float:   \n    return sum(self.lines) * (1 + TAX)\n"
    replace = "def total(self) -> float:\n    return round(sum(self.lines) * (1 + TAX), 2)\n"
    apply_search_replace(root, [SearchReplace(path="billing/invoice.py", search=search, replace=replace)])
    assert "    def total(self) -> float:\n        return round(sum(self.lines) * (1 + TAX), 2)\n" in read(root)


def test_a_search_block_that_is_not_found_says_to_copy_the_exact_lines(root: Path) -> None:
    edit = SearchReplace(path="billing/invoice.py", search="def subtotal(self):\n    pass\n", replace="")
    with pytest.raises(EditError) as caught:
        apply_search_replace(root, [edit])
    message = str(caught.value)
    assert message.startswith("billing/invoice.py: ")
    assert "'def subtotal(self):'" in message and "not found; copy the exact lines from the file" in message
    assert read(root) == INVOICE


def test_a_search_block_that_matches_twice_asks_for_more_lines(root: Path) -> None:
    edit = SearchReplace(path="notes.txt", search="alpha\n", replace="gamma\n")
    with pytest.raises(EditError, match="notes.txt: .*'alpha'.*matches 2 places; include more surrounding lines"):
        apply_search_replace(root, [edit])
    assert read(root, "notes.txt") == "alpha\nbeta\nalpha\n"


def test_a_search_block_that_matches_twice_only_after_normalising_whitespace_is_refused(root: Path) -> None:
    (root / "notes.txt").write_text("    alpha\nbeta\n  alpha\n")
    with pytest.raises(EditError, match="matches 2 places"):
        apply_search_replace(root, [SearchReplace(path="notes.txt", search="alpha  \n", replace="gamma\n")])


def test_an_empty_search_creates_a_new_file(root: Path) -> None:
    edit = SearchReplace(path="billing/tax.py", search="", replace="RATE = 0.2\n")
    assert apply_search_replace(root, [edit]).changed == ["billing/tax.py"]
    assert read(root, "billing/tax.py") == "RATE = 0.2\n"


def test_an_empty_search_on_an_existing_file_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match="search block is empty but the file exists"):
        apply_search_replace(root, [SearchReplace(path="notes.txt", search="", replace="x")])


def test_a_missing_file_is_named_in_the_error(root: Path) -> None:
    with pytest.raises(EditError, match="billing/nope.py: no such file"):
        apply_search_replace(root, [SearchReplace(path="billing/nope.py", search="x", replace="y")])


def test_search_replace_edits_are_all_or_nothing(root: Path) -> None:
    edits = [SearchReplace(path="billing/invoice.py", search="TAX = 0.2\n", replace="TAX = 0.3\n"),
             SearchReplace(path="notes.txt", search="delta\n", replace="x\n")]
    with pytest.raises(EditError, match="notes.txt"):
        apply_search_replace(root, edits)
    assert read(root) == INVOICE


def test_several_edits_to_one_file_apply_in_order(root: Path) -> None:
    edits = [SearchReplace(path="notes.txt", search="beta\n", replace="beta\ngamma\n"),
             SearchReplace(path="notes.txt", search="gamma\n", replace="delta\n")]
    apply_search_replace(root, edits)
    assert read(root, "notes.txt") == "alpha\nbeta\ndelta\nalpha\n"


def test_an_edit_that_breaks_python_syntax_leaves_the_file_as_it_was(root: Path) -> None:
    edit = SearchReplace(path="billing/invoice.py", search="TAX = 0.2\n", replace="TAX = (0.2\n")
    with pytest.raises(EditError, match=r"billing/invoice.py: the edit breaks the syntax at line \d+: "):
        apply_search_replace(root, [edit])
    assert read(root) == INVOICE


@pytest.mark.parametrize("path", ["../outside.py", "/etc/hosts", "billing/../../outside.py", ".git/config"])
def test_a_path_outside_the_root_is_refused(root: Path, path: str) -> None:
    with pytest.raises(EditError, match="not a path inside the repository"):
        apply_search_replace(root, [SearchReplace(path=path, search="", replace="x")])
    assert not (root.parent / "outside.py").exists()


def test_a_path_through_a_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EditError, match="leads outside the repository through a symlink"):
        apply_search_replace(root, [SearchReplace(path="link/evil.py", search="", replace="x = 1\n")])
    assert not (tmp_path / "elsewhere" / "evil.py").exists()


def test_edit_errors_are_model_behaviour_errors() -> None:
    assert issubclass(EditError, ModelBehaviorError)


# -- unified diff ---------------------------------------------------------------------------

DIFF = """\
--- a/billing/invoice.py
+++ b/billing/invoice.py
@@ -1,6 +1,6 @@
 \"\"\"Invoices.\"\"\"

-TAX = 0.2
+TAX = 0.21


 class Invoice:
"""


def test_a_unified_diff_applies_inside_a_workspace(root: Path) -> None:
    ws = Workspace.create(root, "run1")
    assert apply_unified_diff(ws.path, DIFF).changed == ["billing/invoice.py"]
    assert "TAX = 0.21\n" in read(ws.path)
    assert read(root) == INVOICE
    assert ws.changed_files() == ["billing/invoice.py"]


def test_a_unified_diff_with_wrong_hunk_counts_still_applies(root: Path) -> None:
    apply_unified_diff(root, DIFF.replace("@@ -1,6 +1,6 @@", "@@ -1,4 +1,9 @@"))
    assert "TAX = 0.21\n" in read(root)


def test_a_unified_diff_can_create_a_file(root: Path) -> None:
    diff = "--- /dev/null\n+++ b/billing/tax.py\n@@ -0,0 +1 @@\n+RATE = 0.2\n"
    assert apply_unified_diff(root, diff).changed == ["billing/tax.py"]
    assert read(root, "billing/tax.py") == "RATE = 0.2\n"


def test_a_hunk_that_does_not_apply_is_refused_and_nothing_changes(root: Path) -> None:
    with pytest.raises(EditError, match="the diff does not apply: .*billing/invoice.py.*read it again"):
        apply_unified_diff(root, DIFF.replace("-TAX = 0.2", "-TAX = 0.5"))
    assert read(root) == INVOICE


def test_a_diff_that_breaks_python_syntax_is_undone(root: Path) -> None:
    with pytest.raises(EditError, match="breaks the syntax at line 3"):
        apply_unified_diff(root, DIFF.replace("+TAX = 0.21", "+TAX = = 0.21"))
    assert read(root) == INVOICE


def test_a_diff_without_file_headers_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match="names no files"):
        apply_unified_diff(root, "@@ -1 +1 @@\n-a\n+b\n")


def test_a_diff_that_reaches_outside_the_root_is_refused(root: Path) -> None:
    with pytest.raises(EditError, match="not a path inside the repository"):
        apply_unified_diff(root, "--- /dev/null\n+++ b/../outside.py\n@@ -0,0 +1 @@\n+x = 1\n")
    assert not (root.parent / "outside.py").exists()


# -- whole definitions ----------------------------------------------------------------------


def test_a_top_level_function_is_replaced_with_its_decorators_and_comment(root: Path) -> None:
    new = "def render(invoice: Invoice) -> str:\n    return str(invoice.total())\n"
    assert replace_definition(root, "billing/invoice.py", "render", new).changed == ["billing/invoice.py"]
    assert read(root).endswith("\n\n\ndef render(invoice: Invoice) -> str:\n    return str(invoice.total())\n")
    assert "# Used by the app." not in read(root) and "@staticmethod" not in read(root)


def test_a_method_is_replaced_and_reindented_to_its_class(root: Path) -> None:
    new = "def total(self) -> float:\n    return 0.0\n"
    replace_definition(root, "billing/invoice.py", "Invoice.total", new)
    expected = INVOICE.replace(
        "    # Tax included.\n    def total(self) -> float:\n        return sum(self.lines) * (1 + TAX)\n",
        "    def total(self) -> float:\n        return 0.0\n")
    assert read(root) == expected


def test_new_code_already_indented_keeps_one_level_of_indentation(root: Path) -> None:
    new = textwrap.indent("def total(self) -> float:\n    return 1.0\n", "        ")
    replace_definition(root, "billing/invoice.py", "Invoice.total", new)
    assert "\n    def total(self) -> float:\n        return 1.0\n" in read(root)


def test_a_symbol_that_is_not_defined_lists_what_is(root: Path) -> None:
    with pytest.raises(EditError, match=r"no function or class named 'subtotal' in class Invoice; "
                                        r"defined there: __init__, total, empty, empty"):
        replace_definition(root, "billing/invoice.py", "Invoice.subtotal", "def subtotal(self): ...")


def test_a_symbol_defined_twice_is_refused_rather_than_guessed(root: Path) -> None:
    with pytest.raises(EditError, match="'empty' is defined 2 times in class Invoice"):
        replace_definition(root, "billing/invoice.py", "Invoice.empty", "def empty(self): ...")
    assert read(root) == INVOICE


def test_a_definition_that_breaks_python_syntax_leaves_the_file_as_it_was(root: Path) -> None:
    with pytest.raises(EditError, match="breaks the syntax at line"):
        replace_definition(root, "billing/invoice.py", "render", "def render(invoice:\n    return 1\n")
    assert read(root) == INVOICE


def test_replace_definition_refuses_a_path_outside_the_root(root: Path) -> None:
    with pytest.raises(EditError, match="not a path inside the repository"):
        replace_definition(root, "../invoice.py", "render", "def render(): ...")


def test_a_blank_context_line_that_lost_its_space_still_counts_as_context(root: Path) -> None:
    assert "\n\n-TAX" in DIFF  # the line between the docstring and TAX has no leading space
    assert apply_unified_diff(root, DIFF).changed == ["billing/invoice.py"]
