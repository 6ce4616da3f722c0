"""The llama.cpp grammar for a schema: llama-cpp-python's converter, with JSON's own text rule.

Two rules of the converter are replaced:

- A character of a JSON string: the converter admits any character but `"` and `\\`, raw
  newlines and other control characters included, which is not JSON (`Invalid control
  character`); here it is any other code point or a short escape (`\\"`, `\\\\`, `\\/`, `\\n`,
  `\\t`, `\\r`, `\\b`, `\\f`). With no `\\u00e9`-style escape a character is at most 4 bytes, which is
  what `schema_budget` counts.
- A bounded string: the converter unrolls `maxLength` into nested optional groups, one per
  character, which llama.cpp's parser refuses past a few thousand; here it is llama.cpp's
  own repetition, `char{m,n}`, in segments of `SEGMENT` characters past that.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

SEGMENT = 500
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
        def _add_primitive(self, name: str, rule: Any) -> str:
            if name == "char":
                rule = llama_grammar.BuiltinRule(TEXT_CHAR, [])
            return str(super()._add_primitive(name, rule))

        def visit(self, schema: dict[str, Any], name: str) -> str:
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
