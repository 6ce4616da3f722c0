"""The code index: chunk boundaries, search, symbols, incremental refresh, cache, path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import turnout.tools
from tests.tools.conftest import write_repo
from turnout.errors import ConfigError, UserError
from turnout.tools import Chunk, CodeIndex
from turnout.tools._lexical import code_tokens


def chunk(index: CodeIndex, symbol: str) -> Chunk:
    [found] = [c for c in index.chunks if c.symbol == symbol]
    return found


def module_chunks(index: CodeIndex, path: str) -> list[Chunk]:
    return [c for c in index.chunks if c.path == path and c.kind == "module"]


def test_tools_exports_are_pinned() -> None:
    assert sorted(turnout.tools.__all__) == sorted([
        "Chunk", "CodeIndex", "CodemodError", "CodemodName", "CodemodResult", "CodemodSpec", "EditError",
        "EditReport", "Hit", "IndexStats", "Mention", "Reference", "RepositoryChanged", "SearchReplace",
        "TestCommandError", "TestReport", "Workspace", "WorkspaceError", "apply_search_replace",
        "apply_unified_diff", "available_codemods", "convert_to_fstrings", "detect_test_command",
        "move_function", "rename_symbol", "replace_definition", "run_tests", "tree_fingerprint",
    ])
    for name in turnout.tools.__all__:
        assert hasattr(turnout.tools, name)


# -- chunk boundaries ---------------------------------------------------------------------


def test_a_function_is_one_chunk_with_the_comment_above_it(repo: Path) -> None:
    render = chunk(CodeIndex.build(repo), "render_invoice")
    assert (render.path, render.kind, render.start_line, render.end_line) == ("billing/invoice.py", "function", 24, 28)
    assert render.text.startswith("# Used by the app")
    assert render.text.endswith('return "\\n".join([invoice.customer, *rows])')


def test_a_method_is_its_own_chunk_named_by_its_class(repo: Path) -> None:
    add_line = chunk(CodeIndex.build(repo), "Invoice.add_line")
    assert (add_line.kind, add_line.start_line, add_line.end_line) == ("method", 15, 17)
    assert add_line.text.splitlines()[0] == "    def add_line(self, item: str, price: float) -> None:"


def test_a_class_chunk_spans_the_class_from_its_decorator_and_outlines_its_methods(repo: Path) -> None:
    invoice = chunk(CodeIndex.build(repo), "Invoice")
    assert (invoice.kind, invoice.start_line, invoice.end_line) == ("class", 8, 21)
    assert invoice.text.startswith("@dataclass\nclass Invoice:")
    assert "def add_line(self, item: str, price: float) -> None:\n        ..." in invoice.text
    assert "self.lines.append" not in invoice.text


def test_module_code_between_definitions_becomes_module_chunks(repo: Path) -> None:
    chunks = module_chunks(CodeIndex.build(repo), "billing/invoice.py")
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 5), (31, 31)]
    assert chunks[0].symbol is None
    assert chunks[1].text == 'DEFAULT_CURRENCY = "EUR"'


def test_overload_stubs_join_the_implementation_they_describe(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "r", {"m.py": """
        from typing import overload

        @overload
        def parse(value: int) -> int: ...
        @overload
        def parse(value: str) -> str: ...
        def parse(value):
            return value
        """})
    [parse] = CodeIndex.build(root).definitions("parse")
    assert (parse.start_line, parse.end_line) == (3, 8)


def test_a_python_file_that_does_not_parse_is_split_into_line_windows(tmp_path: Path) -> None:
    broken = "def ok():\n    return 1\n\ndef broken(:\n" + "x = 1\n" * 80
    root = write_repo(tmp_path / "r", {"broken.py": broken})
    chunks = CodeIndex.build(root).chunks
    assert {c.kind for c in chunks} == {"lines"}
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 40), (41, 84)]


def test_text_files_are_split_into_windows_that_prefer_to_end_at_a_blank_line(tmp_path: Path) -> None:
    paragraphs = "\n\n".join("\n".join(f"para {p} line {n}" for n in range(9)) for p in range(10))
    root = write_repo(tmp_path / "r", {"notes.md": paragraphs})
    chunks = CodeIndex.build(root).chunks
    assert {c.kind for c in chunks} == {"lines"}
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 39), (41, 79), (81, 99)]


# -- search -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "symbol"),
    [
        ("load the stock count of each item from csv", "load_inventory"),
        ("which items need to be reordered below a threshold", "reorder_needed"),
        ("append an item and its price to an invoice", "Invoice.add_line"),
        ("format an invoice as printable text", "render_invoice"),
        ("bill the customer for items in stock", "checkout"),
    ],
)
def test_search_ranks_the_function_that_answers_first(repo: Path, query: str, symbol: str) -> None:
    hits = CodeIndex.build(repo).search(query)
    assert hits[0].chunk.symbol == symbol
    assert hits[0].rank == 1


def test_search_finds_an_identifier_from_its_words(repo: Path) -> None:
    assert CodeIndex.build(repo).search("inventory load")[0].chunk.symbol == "load_inventory"


def test_identifiers_are_tokenised_whole_and_by_snake_and_camel_case_parts() -> None:
    tokens = code_tokens("read_stock_file HTTPServer loadInventory")
    assert tokens == ["read_stock_file", "read", "stock", "file", "httpserver", "http", "server",
                      "loadinventory", "load", "inventory"]


def test_tokens_are_lower_case_without_stopwords_or_plural_s() -> None:
    assert code_tokens("How are the Options read from Entries?") == ["option", "read", "entry"]


def test_search_returns_at_most_k_hits_ranked_from_one(repo: Path) -> None:
    hits = CodeIndex.build(repo).search("invoice", k=2)
    assert [h.rank for h in hits] == [1, 2]
    assert hits[0].score >= hits[1].score > 0


def test_a_query_of_only_stopwords_finds_nothing(repo: Path) -> None:
    assert CodeIndex.build(repo).search("how is the") == []


def test_search_rejects_k_below_one(repo: Path) -> None:
    with pytest.raises(UserError, match="k >= 1"):
        CodeIndex.build(repo).search("invoice", k=0)


# -- symbols ------------------------------------------------------------------------------


def test_symbols_lists_every_defined_name_qualified(repo: Path) -> None:
    assert CodeIndex.build(repo).symbols() == [
        "Invoice", "Invoice.add_line", "Invoice.total", "checkout", "load_inventory",
        "render_invoice", "reorder_needed",
    ]


@pytest.mark.parametrize("name", ["add_line", "Invoice.add_line", "billing.invoice.Invoice.add_line"])
def test_definitions_accept_bare_qualified_and_module_qualified_names(repo: Path, name: str) -> None:
    [found] = CodeIndex.build(repo).definitions(name)
    assert (found.path, found.symbol) == ("billing/invoice.py", "Invoice.add_line")


def test_definitions_of_an_unknown_name_are_empty(repo: Path) -> None:
    assert CodeIndex.build(repo).definitions("Invoice.remove_line") == []


def test_references_list_uses_across_files_and_skip_the_definition(repo: Path) -> None:
    found = [(r.path, r.line, r.text) for r in CodeIndex.build(repo).references("load_inventory")]
    assert found == [
        ("README.md", 3, "Call load_inventory to read the stock file; preload_inventory is not a thing."),
        ("billing/app.py", 1, "from billing.inventory import load_inventory"),
        ("billing/app.py", 4, '__all__ = ["checkout", "load_inventory"]'),
        ("billing/app.py", 9, "stock = load_inventory(stock_file)"),
    ]


def test_references_to_a_method_include_attribute_uses(repo: Path) -> None:
    found = [(r.path, r.line) for r in CodeIndex.build(repo).references("Invoice.add_line")]
    assert found == [("billing/app.py", 13)]


def test_references_in_text_files_match_whole_words_only(repo: Path) -> None:
    assert CodeIndex.build(repo).references("preload") == []


def test_a_name_that_is_no_identifier_is_a_user_error(repo: Path) -> None:
    with pytest.raises(UserError, match="not a symbol name"):
        CodeIndex.build(repo).definitions("add line")


# -- incremental refresh and cache --------------------------------------------------------


def test_the_first_build_indexes_every_file(repo: Path) -> None:
    stats = CodeIndex(repo).refresh()
    assert stats.reindexed == ["README.md", "billing/__init__.py", "billing/app.py",
                               "billing/inventory.py", "billing/invoice.py"]
    assert (stats.files, stats.removed) == (5, [])
    assert stats.chunks == len(CodeIndex(repo).chunks) > 0


def test_refresh_reindexes_only_the_changed_file(repo: Path) -> None:
    index = CodeIndex.build(repo)
    inventory = repo / "billing/inventory.py"
    inventory.write_text(inventory.read_text() + "\n\ndef count_items(stock):\n    return len(stock)\n")
    stats = index.refresh()
    assert (stats.reindexed, stats.removed) == (["billing/inventory.py"], [])
    assert [c.symbol for c in index.definitions("count_items")] == ["count_items"]


def test_refresh_drops_deleted_files(repo: Path) -> None:
    index = CodeIndex.build(repo)
    (repo / "billing/app.py").unlink()
    stats = index.refresh()
    assert (stats.reindexed, stats.removed, stats.files) == ([], ["billing/app.py"], 4)
    assert index.definitions("checkout") == []
    assert [r.path for r in index.references("load_inventory")] == ["README.md"]


def test_a_touched_but_unchanged_file_is_not_reindexed(repo: Path) -> None:
    index = CodeIndex.build(repo)
    later = (repo / "billing/app.py").stat().st_mtime_ns + 5_000_000_000
    os.utime(repo / "billing/app.py", ns=(later, later))
    assert index.refresh().reindexed == []


def test_the_cache_is_written_under_turnout_index_by_default(repo: Path) -> None:
    CodeIndex.build(repo)
    assert (repo / ".turnout/index/code_index.json").is_file()


def test_a_cache_dir_keeps_the_cache_out_of_the_repository(repo: Path, tmp_path: Path) -> None:
    CodeIndex.build(repo, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache/code_index.json").is_file()
    assert not (repo / ".turnout").exists()


def test_a_cache_dir_inside_the_repository_is_not_indexed(repo: Path) -> None:
    CodeIndex.build(repo, cache_dir=repo / "index-cache")
    assert CodeIndex.build(repo, cache_dir=repo / "index-cache").files == [
        "README.md", "billing/__init__.py", "billing/app.py", "billing/inventory.py", "billing/invoice.py"]


def test_the_cache_round_trips_so_a_new_index_rereads_nothing(repo: Path) -> None:
    first = CodeIndex.build(repo)
    loaded = CodeIndex(repo)
    assert loaded.chunks == first.chunks
    assert loaded.search("csv stock")[0].chunk == first.search("csv stock")[0].chunk
    assert loaded.refresh().reindexed == []


def test_a_corrupt_cache_is_rebuilt(repo: Path) -> None:
    CodeIndex.build(repo)
    (repo / ".turnout/index/code_index.json").write_text("{not json")
    index = CodeIndex(repo)
    assert index.chunks == []
    assert len(index.refresh().reindexed) == 5


# -- path safety --------------------------------------------------------------------------


def test_a_symlinked_file_pointing_outside_the_root_is_skipped(repo: Path, tmp_path: Path) -> None:
    secret = write_repo(tmp_path / "outside", {"secret.py": "API_KEY = 'hunter2'\n"}) / "secret.py"
    (repo / "billing/leak.py").symlink_to(secret)
    index = CodeIndex.build(repo)
    assert "billing/leak.py" not in index.files
    assert index.search("API_KEY") == []


def test_a_symlinked_directory_is_not_followed(repo: Path, tmp_path: Path) -> None:
    outside = write_repo(tmp_path / "outside", {"vendor.py": "def vendored():\n    pass\n"})
    (repo / "linked").symlink_to(outside, target_is_directory=True)
    assert CodeIndex.build(repo).definitions("vendored") == []


def test_a_symlinked_file_inside_the_root_is_indexed(repo: Path) -> None:
    (repo / "alias.py").symlink_to(repo / "billing/inventory.py")
    assert "alias.py" in CodeIndex.build(repo).files


def test_vcs_virtualenv_dependency_and_build_directories_are_skipped(repo: Path) -> None:
    junk = "def junk():\n    pass\n"
    write_repo(repo, {
        ".git/hooks/pre-commit.py": junk, ".hg/x.py": junk, ".venv/lib/site.py": junk,
        "venv/x.py": junk, "env311/pyvenv.cfg": "home = /usr", "env311/lib/x.py": junk,
        "node_modules/pkg/index.js": junk, "billing/__pycache__/x.py": junk, ".turnout/x.py": junk,
        ".tox/x.py": junk, ".mypy_cache/x.py": junk, ".pytest_cache/x.py": junk, "dist/x.py": junk,
        "build/lib/x.py": junk,
    })
    index = CodeIndex.build(repo)
    assert index.definitions("junk") == []
    assert index.files == ["README.md", "billing/__init__.py", "billing/app.py",
                           "billing/inventory.py", "billing/invoice.py"]


def test_binary_files_are_skipped(repo: Path) -> None:
    (repo / "data.json").write_bytes(b'{"a": 1}' + b"\0" * 100)
    stats = CodeIndex(repo).refresh()
    assert "data.json" not in stats.reindexed
    assert stats.skipped == 1


def test_files_over_the_size_limit_are_skipped(repo: Path) -> None:
    (repo / "big.py").write_text("def big():\n    pass\n" + "# padding\n" * 200)
    index = CodeIndex(repo, max_file_bytes=1000)
    stats = index.refresh()
    assert "big.py" not in index.files
    assert stats.skipped == 1


# -- bad input ----------------------------------------------------------------------------


def test_a_missing_root_is_a_config_error_that_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass the directory of the repository"):
        CodeIndex.build(tmp_path / "nowhere")


def test_a_file_as_root_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        CodeIndex(tmp_path / "file.py")
