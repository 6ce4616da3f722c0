"""The smallest valid answer to a JSON schema, for `Script.auto()` (as pydantic-ai's
`TestModel` answers any output type): a test of a graph then needs no hand-written JSON.

First of every choice (`enum`, `const`, `anyOf`/`oneOf` branch), required properties only,
lists at their `minItems`, numbers at their lower bound, strings at their `minLength` made
of "a" (or the first of a few short candidates a `pattern` accepts). The answer is checked
against the schema; where none of this satisfies it, the error says which part to script.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from turnout.engines.schema_bounds import answer_problems
from turnout.errors import ConfigError

PLAIN_TEXT = "scripted auto answer"
_PATTERN_CANDIDATES = ("a", "x1", "a_b", "A", "0", "1", "a.b", "a/b.py", "a-b", "abc", "2020-01-01", "")


class AutoAnswerError(ConfigError):
    """`Script.auto()` found no answer for a schema: script that call's answer instead."""


def auto_answer(schema: dict[str, Any] | None) -> str:
    """The smallest answer `schema` accepts, as JSON text (plain text when there is no schema)."""
    if schema is None:
        return PLAIN_TEXT
    text = json.dumps(_value(schema, schema, "(root)"))
    if problems := answer_problems(schema, text):
        raise AutoAnswerError(f"Script.auto() made {text[:200]}, which the schema refuses ({problems}); script this answer")
    return text


def _value(node: Any, root: dict[str, Any], where: str) -> Any:
    if not isinstance(node, dict) or node in ({}, True):
        return None if node is not True else ""
    if isinstance(node.get("$ref"), str):
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _value({**target, **{k: v for k, v in node.items() if k != "$ref"}}, root, where)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        if node.get(key):
            return _value(node[key][0], root, where)
    if node.get("allOf"):
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(part)
        return _value(merged, root, where)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        return {name: _value(properties.get(name, {}), root, f"{where}.{name}") for name in node.get("required", [])}
    if kind == "array":
        item = _value(node.get("items", {}), root, f"{where}[]")
        return [item] * int(node.get("minItems", 0))
    if kind in ("integer", "number"):
        return _number(node, kind)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "string" or kind is None:
        return _string(node, where)
    raise AutoAnswerError(f"Script.auto() cannot answer {where} of type {kind!r}; script this answer")


def _number(node: dict[str, Any], kind: str) -> int | float:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    value: int | float = 0 if low is None else low
    if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
        value = node["exclusiveMinimum"] + (1 if kind == "integer" else 1e-6)
    high = node.get("maximum")
    if low is None and high is not None and value > high:
        value = high
    return math.ceil(value) if kind == "integer" else value


def _string(node: dict[str, Any], where: str) -> str:
    length = int(node.get("minLength", 0))
    pattern = node.get("pattern")
    if pattern is None:
        return "a" * length
    for candidate in (*_PATTERN_CANDIDATES, "a" * max(length, 1)):
        if len(candidate) >= length and len(candidate) <= node.get("maxLength", len(candidate)) and re.search(pattern, candidate):
            return candidate
    raise AutoAnswerError(f"Script.auto() found no short string for {where} matching {pattern!r}; script this answer")
