"""The retriever's symbol choices: real names, tests only for questions about tests, and a
plain keyword schema when the choice could not close within its budget."""

from __future__ import annotations

from pathlib import Path

from turnout.agents import Retriever
from turnout.agents.schemas import SearchTerms
from turnout.tools.code_index import CodeIndex


def _index(tmp_path: Path, source: str) -> CodeIndex:
    (tmp_path / "pkg.py").write_text(source)
    return CodeIndex.build(tmp_path, cache_dir=tmp_path / ".cache")


def _choices(schema: type[SearchTerms]) -> list[str]:
    items = schema.model_json_schema()["properties"]["symbols"]["items"]
    return items["enum"] if "enum" in items else [items["const"]]


def test_test_names_are_choices_only_for_questions_about_tests(tmp_path: Path) -> None:
    index = _index(tmp_path, "def strip_ansi(s):\n    return s\n\n\ndef test_strip_ansi():\n    assert strip_ansi('a')\n")
    assert _choices(Retriever(index)._schema(index, "Which function strips ANSI codes?")) == ["strip_ansi"]
    assert "test_strip_ansi" in _choices(Retriever(index)._schema(index, "Which test covers strip_ansi?"))


def test_names_too_long_to_choose_within_the_budget_leave_plain_keywords(tmp_path: Path) -> None:
    names = [f"f_{i}_" + "x" * 150 for i in range(3)]
    index = _index(tmp_path, "".join(f"def {n}():\n    pass\n\n\n" for n in names))
    assert Retriever(index)._schema(index, "Where is f?") is SearchTerms
