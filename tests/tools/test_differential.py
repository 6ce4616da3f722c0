"""The differential check behind extract and inline: a pure function called before and after a
change on the same generated inputs; a difference is caught, and "not pure" or "cannot make
inputs" is said, never counted as "same"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.refactor_repo import write_files
from turnout.tools import _rope_ops
from turnout.tools.codemods import CodemodError
from turnout.tools.operations import Extract, Inline
from turnout.tools.operations._base import read_tree
from turnout.tools.operations.differential import Comparison, compare_before_after

BEFORE = (
    "def grade(score: int, bonus: bool = False) -> str:\n"
    "    points = score + (5 if bonus else 0)\n"
    "    if points >= 90:\n"
    "        return 'A'\n"
    "    return 'B' if points >= 50 else 'C'\n"
)


def compare(tmp_path: Path, after: str, before: str = BEFORE, functions: tuple[str, ...] = ("grade",)) -> Comparison:
    write_files(tmp_path, {"marks.py": after})
    return compare_before_after(tmp_path, None, "marks.py", "marks", list(functions), before)


def test_the_same_behaviour_is_compared_and_reported_with_its_count(tmp_path: Path) -> None:
    after = ("def grade(score: int, bonus: bool = False) -> str:\n    return letter(score + (5 if bonus else 0))\n\n\n"
             "def letter(points: int) -> str:\n    if points >= 90:\n        return 'A'\n    return 'B' if points >= 50 else 'C'\n")
    outcome = compare(tmp_path, after)
    assert outcome.changed is None
    assert outcome.note.startswith("compared grade before and after on ") and outcome.note.endswith("generated inputs: same results")


def test_a_changed_result_or_exception_is_caught(tmp_path: Path) -> None:
    off_by_one = BEFORE.replace("points >= 90", "points > 90")
    outcome = compare(tmp_path, off_by_one)
    assert outcome.changed is not None and outcome.changed.startswith("grade(")
    assert "returned 'A' before and returned 'B' after" in outcome.changed
    raising = BEFORE.replace("    points = score", "    points = 100 // score + score")
    assert "returned" in (compare(tmp_path, raising).changed or "") and "raised ZeroDivisionError" in (compare(tmp_path, raising).changed or "")


def test_the_same_exception_before_and_after_is_the_same_behaviour(tmp_path: Path) -> None:
    before = "def ratio(a: int, b: int) -> float:\n    return a / b\n"
    after = "def ratio(a: int, b: int) -> float:\n    quotient = a / b\n    return quotient\n"
    assert compare(tmp_path, after, before, ("ratio",)).changed is None  # b == 0 raises ZeroDivisionError in both


@pytest.mark.parametrize("source, why", [
    ("def grade(score: int) -> None:\n    print(score)\n", "not compared: grade calls print (line 2), which may have side effects"),
    ("def grade(scores: list) -> None:\n    scores.append(1)\n", "not compared: grade calls .append() (line 2), which may have side effects"),
    ("def grade(scores: list) -> None:\n    scores[0] = 1\n", "not compared: grade assigns into something that is not its own (line 2)"),
    ("TOTAL = 0\ndef grade(score: int) -> None:\n    global TOTAL\n    TOTAL += score\n", "not compared: grade uses global"),
    ("def grade(score):\n    return score\n", "not compared: grade has an untyped parameter 'score' without a literal default"),
    ("def grade(score: 'Report') -> int:\n    return 1\n",
     "not compared: grade has a parameter typed \"'Report'\", which turnout cannot generate values of"),
    ("def grade(score: Report) -> int:\n    return 1\n",
     "not compared: grade has a parameter typed 'Report', which turnout cannot generate values of"),
])
def test_what_is_not_pure_or_has_no_inputs_is_said_not_compared(tmp_path: Path, source: str, why: str) -> None:
    outcome = compare(tmp_path, source, source)
    assert outcome.changed is None and outcome.note == why


def test_an_extraction_that_changes_behaviour_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_files(tmp_path / "repo", {"marks.py": BEFORE})

    def wrong_extract(root: Path, path: str, start: int, end: int, name: str) -> None:
        (root / path).write_text(BEFORE.replace("    if points >= 90:\n        return 'A'\n",
                                                f"    if {name}(points):\n        return 'A'\n")
                                 + f"\n\ndef {name}(points: int) -> bool:\n    return points > 90\n")

    monkeypatch.setattr(_rope_ops, "extract", wrong_extract)
    op = Extract(path="marks.py", start_line=3, end_line=4, new_name="top_mark").checked(read_tree(root))
    with pytest.raises(CodemodError, match=r"the extraction changed what grade does: grade\(.*\) returned 'A' before and "
                                           r"returned 'B' after; every file was restored"):
        op.apply(root)
    assert (root / "marks.py").read_text() == BEFORE


def test_a_real_extraction_and_inlining_are_compared(tmp_path: Path) -> None:
    root = write_files(tmp_path / "repo", {"marks.py": BEFORE + "\n\ndef bonus_points(bonus: bool) -> int:\n    return bonus * 5\n\n\n"
                                                      "def total(score: int, bonus: bool) -> int:\n    return score + bonus_points(bonus)\n"})
    extracted = Extract(path="marks.py", start_line=2, end_line=2, new_name="points_of").checked(read_tree(root)).apply(root)
    assert any(n.startswith("compared grade before and after on ") and n.endswith("same results") for n in extracted.notes)
    inlined = Inline(name="bonus_points").checked(read_tree(root)).apply(root)
    assert any(n.startswith("compared total before and after on ") and n.endswith("same results") for n in inlined.notes)


def test_rope_inlining_a_conditional_expression_without_parentheses_is_caught_and_undone(tmp_path: Path) -> None:
    # rope writes `score + 5 if bonus else 0` for `score + bonus_points(bonus)`: total(7, False) becomes 0
    text = ("def bonus_points(bonus: bool) -> int:\n    return 5 if bonus else 0\n\n\n"
            "def total(score: int, bonus: bool) -> int:\n    return score + bonus_points(bonus)\n")
    root = write_files(tmp_path / "repo", {"marks.py": text})
    with pytest.raises(CodemodError, match=r"inlining bonus_points changed what its callers do: total\(.*, False\) returned "
                                           r"-?\d+ before and returned 0 after; every file was restored"):
        Inline(name="bonus_points").checked(read_tree(root)).apply(root)
    assert (root / "marks.py").read_text() == text


def test_an_impure_caller_is_named_and_the_pure_ones_still_compared(tmp_path: Path) -> None:
    before = BEFORE + "\n\ndef shout(score: int) -> None:\n    print(score)\n"
    outcome = compare(tmp_path, before.replace("points >= 90", "points > 90"), before, ("shout", "grade"))
    assert outcome.changed is not None and outcome.changed.startswith("grade(")
    same = compare(tmp_path, before, before, ("shout", "grade"))
    assert same.changed is None and same.note.endswith(
        "same results (not compared: shout calls print (line 9), which may have side effects)")
