"""The llama.cpp grammar for a schema: llama-cpp-python's converter, with JSON's own text rule.

Three of the converter's rules are replaced:

- A literal (a constant, an enum value, a property name): the converter escapes `"` and line
  breaks but not `\\`, so the JSON text of `"a\"b"` or `"C:\\dir"` made a grammar llama.cpp
  refused or read wrong; here `\\` and tabs are escaped too.
- A character of a JSON string: the converter admits any character but `"` and `\\`, raw
  newlines and other control characters included, which is not JSON (`Invalid control
  character`); here it is any other code point or a short escape (`\\"`, `\\\\`, `\\/`, `\\n`,
  `\\t`, `\\r`, `\\b`, `\\f`). With no `\\u00e9`-style escape a character is at most 4 bytes, which is
  what `schema_budget` counts.
- A bounded string: the converter unrolls `maxLength` into nested optional groups, one per
  character, which llama.cpp's parser refuses past a few thousand; here it is llama.cpp's
  own repetition, `char{m,n}`, in segments of `SEGMENT` characters past that.

And one is added: an integer with `minimum`/`maximum` (the converter ignores both) is the
digits of that range only (`integer_range`); `schema_bounds` lists a short range as an enum.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

SEGMENT = 500
_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\r": "\\r", "\n": "\\n", "\t": "\\t"}
_LITERAL_ESCAPE = re.compile(r'[\\"\r\n\t]')
MAX_DIGITS = 16  # what `schema_budget` counts for an integer: an unbounded side stops here
TEXT_CHAR = r'[^"\\\x00-\x1F\x7F] | "\\" ["\\/bfnrt]'


def schema_gbnf(schema: dict[str, Any]) -> str:
    """GBNF text for `schema` (already bounded and fitted: see `schema_bounds`, `schema_budget`)."""
    converter = _converter_class()(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    resolved = converter.resolve_refs(json.loads(json.dumps(schema)), "schema")
    converter.visit(resolved, "")
    return str(converter.format_grammar())


@lru_cache(maxsize=1)
def _converter_class() -> Any:
    from llama_cpp import llama_grammar

    class TextConverter(llama_grammar.SchemaConverter):  # type: ignore[misc]
        def _format_literal(self, literal: str) -> str:
            return '"' + _LITERAL_ESCAPE.sub(lambda m: _LITERAL_ESCAPES[m.group(0)], literal) + '"'

        def _add_primitive(self, name: str, rule: Any) -> str:
            if name == "char":
                rule = llama_grammar.BuiltinRule(TEXT_CHAR, [])
            return str(super()._add_primitive(name, rule))

        def visit(self, schema: dict[str, Any], name: str) -> str:
            if (bounds := _integer_bounds(schema)) is not None:
                rule_name = name + "-" if name in llama_grammar.RESERVED_NAMES else name or "root"
                return str(self._add_rule(rule_name, f"({integer_range(*bounds)}) space"))
            if not _bounded_text(schema):
                return str(super().visit(schema, name))
            char = self._add_primitive("char", llama_grammar.PRIMITIVE_RULES["char"])
            rule_name = name + "-" if name in llama_grammar.RESERVED_NAMES else name or "root"
            low, high = int(schema.get("minLength", 0)), int(schema["maxLength"])
            body = self._repetition(char, low, high)
            return str(self._add_rule(rule_name, rf'"\"" {body} "\"" space'))

        def _repetition(self, char: str, low: int, high: int) -> str:
            if high <= SEGMENT:
                return f"{char}{{{low},{high}}}" if high else '""'
            segments, rest = divmod(high - low, SEGMENT)
            segment = self._add_rule("char-segment", f"{char}{{{SEGMENT}}}")
            parts = [f"{char}{{{low}}}"] if low else []
            parts.append(f"{segment}{{0,{segments}}}")
            if rest:
                parts.append(f"{char}{{0,{rest}}}")
            return "(" + " ".join(parts) + ")"

    return TextConverter


def _bounded_text(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "string"
        and "maxLength" in schema
        and not any(key in schema for key in ("enum", "const", "pattern", "format", "$ref", "anyOf", "oneOf"))
    )


def _integer_bounds(schema: Any) -> tuple[int, int] | None:
    """An integer schema's inclusive range, when it sets one (unbounded sides at MAX_DIGITS)."""
    if not isinstance(schema, dict) or schema.get("type") != "integer" or any(
        key in schema for key in ("enum", "const", "$ref", "anyOf", "oneOf")
    ):
        return None
    def number(key: str) -> float | None:
        value = schema.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    low, high = number("minimum"), number("maximum")
    if (above := number("exclusiveMinimum")) is not None:
        low = max(low if low is not None else above + 1, math.floor(above) + 1)
    if (below := number("exclusiveMaximum")) is not None:
        high = min(high if high is not None else below - 1, math.ceil(below) - 1)
    if low is None and high is None:
        return None
    largest = 10**MAX_DIGITS - 1
    first = max(math.ceil(low), -largest) if low is not None else -largest
    last = min(math.floor(high), largest) if high is not None else largest
    return (first, last) if first <= last else None


def integer_range(low: int, high: int) -> str:
    """GBNF alternatives that match exactly the integers in [low, high], written as JSON writes
    them (no leading zeros, `-` for negatives)."""
    alternatives: list[str] = []
    if low < 0:
        alternatives += [f'"-" {a}' for a in _natural_range(max(1, -high) if high < 0 else 1, -low)]
    if high >= 0:
        alternatives += _natural_range(max(0, low), high)
    return " | ".join(alternatives)


def _natural_range(low: int, high: int) -> list[str]:
    alternatives: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = min(high, 10**digits - 1)
        if first <= last:
            alternatives += _same_length(str(first), str(last))
    return alternatives


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives for the digit strings of one length from `low` to `high`."""
    if len(low) == 1:
        return [f"[{low}-{high}]" if low != high else f'"{low}"']
    rest = len(low) - 1
    if low[0] == high[0]:
        return [f'"{low[0]}" {tail}' for tail in _same_length(low[1:], high[1:])]
    any_digits = f"[0-9]{{{rest}}}"
    alternatives: list[str] = []
    middle_low, middle_high = int(low[0]) + 1, int(high[0]) - 1
    if low[1:] == "0" * rest:
        middle_low -= 1
    else:
        alternatives += [f'"{low[0]}" {tail}' for tail in _same_length(low[1:], "9" * rest)]
    if high[1:] == "9" * rest:
        middle_high += 1
    if middle_low <= middle_high:
        alternatives.append(f"[{middle_low}-{middle_high}] {any_digits}")
    if high[1:] != "9" * rest:
        alternatives += [f'"{high[0]}" {tail}' for tail in _same_length("0" * rest, high[1:])]
    return alternatives
