"""Free-text bounds fitted to `max_tokens`, so an answer decoded under a schema always closes.

A local engine decodes under a grammar, and the grammar lets the answer end only once the
object is closed. When the longest answer the grammar admits is longer than `max_tokens`, a
model that writes to the limit is cut off inside a string (`EOF while parsing a string`) and
the call fails. Every token is at least one byte, so an answer of at most N bytes takes at
most N tokens, plus the end token: `fit_to_budget` shrinks every free-text string (a string
with no enum, const, pattern or format) and every array without `maxItems`, all by one
factor, until the longest answer the grammar admits fits `max_tokens`.

The longest answer is counted in bytes, from the grammar's own rules: one optional space
after each value and separator, at most 16 digits per integer part (llama.cpp's rule),
`bytes_per_char` per free-text character (4 for UTF-8 where the grammar has no `\\u00e9`-style
escapes, 6 where it has them), a pattern's longest match (1 byte per character when it only
admits ASCII). A schema whose fixed parts (choices, patterns, numbers, minimum lengths) alone
cannot fit is refused, naming the tokens it needs. A schema with a part nothing bounds (a
free-form object, a pattern with `*` or `+`) is decoded as it is, and `Budget.worst_case_tokens`
is None: no promise is made for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from turnout.engines._schema_patterns import MAX_REPEAT, pattern_is_ascii, pattern_max_chars
from turnout.errors import SchemaRefused

SCHEMA_MAX_TOKENS = 1024  # a schema call's answer budget when the call sets none
UNBOUNDED = float("inf")
_SPACE = 1  # llama.cpp's and llguidance's compact whitespace: at most one space after a value
_INTEGER = 1 + 16 + _SPACE  # sign, 16 digits
_NUMBER = _INTEGER + 1 + 16 + 2 + 16  # fraction and exponent
_FORMATS = {"date": 10, "time": 30, "date-time": 40, "uuid": 36}
_SCALE = 1000


@dataclass(frozen=True)
class Budget:
    """A schema fitted to a token budget."""

    schema: dict[str, Any]
    max_tokens: int
    worst_case_tokens: int | None  # None: some part is unbounded, nothing is promised
    scaled: bool  # whether free-text bounds were lowered to fit


def fit_to_budget(schema: dict[str, Any], max_tokens: int, bytes_per_char: int) -> Budget:
    """`schema` (already through `grammar_schema`) with free-text bounds fitted to `max_tokens`."""
    key = json.dumps(schema)  # keys in order: the grammar writes properties in this order
    return _fit(key, max_tokens, bytes_per_char)


@lru_cache(maxsize=256)
def _fit(key: str, max_tokens: int, bytes_per_char: int) -> Budget:
    schema = json.loads(key)
    room = max_tokens - 1  # the end token

    def at(scale: int) -> tuple[dict[str, Any], float]:
        fitted = _scaled(schema, scale, max_tokens)
        return fitted, _Counter(fitted, bytes_per_char).bytes(fitted)

    full, worst = at(_SCALE)
    if worst == UNBOUNDED:
        return Budget(full, max_tokens, None, False)
    if worst <= room:
        return Budget(full, max_tokens, int(worst) + 1, False)
    smallest, least = at(0)
    if least > room:
        raise SchemaRefused(
            f"an answer to this schema can take {int(least) + 1:,} tokens even with every free-text "
            f"field at its minimum length (its choices, patterns, numbers and list items), more than "
            f"max_tokens {max_tokens:,}: raise max_tokens, or allow fewer items or shorter patterns"
        )
    low, high = 0, _SCALE  # at(low) fits, at(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if at(middle)[1] <= room:
            low = middle
        else:
            high = middle
    fitted, worst = at(low) if low else (smallest, least)
    return Budget(fitted, max_tokens, int(worst) + 1, True)


def _scaled(node: Any, scale: int, nominal: int) -> Any:
    """A copy of `node` with each free-text string's `maxLength` and each unbounded array's
    `maxItems` at `scale`/1000 of its own (or of `nominal` where it has none)."""
    if isinstance(node, list):
        return [_scaled(item, scale, nominal) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _scaled(value, scale, nominal) if key not in ("enum", "const", "default", "examples") else value
           for key, value in node.items()}
    if _is_free_text(node):
        out["maxLength"] = max(node.get("minLength", 0), node.get("maxLength", nominal) * scale // _SCALE)
    elif _types(node) == {"array"} and "maxItems" not in node and not isinstance(node.get("items"), list):
        out["maxItems"] = max(node.get("minItems", 0), min(nominal, MAX_REPEAT) * scale // _SCALE)
    return out


def _is_free_text(node: dict[str, Any]) -> bool:
    return _types(node) == {"string"} and not any(k in node for k in ("enum", "const", "pattern", "format"))


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


class _Counter:
    """The longest answer, in bytes, that the grammar built from a schema admits."""

    def __init__(self, root: dict[str, Any], bytes_per_char: int) -> None:
        self.root = root
        self.bytes_per_char = bytes_per_char

    def bytes(self, node: Any) -> float:
        if node is True or node == {}:
            return UNBOUNDED
        if not isinstance(node, dict):
            return 0 if node is False else UNBOUNDED
        if isinstance(node.get("$ref"), str):
            return self.bytes(self._resolve(node["$ref"]))
        branches = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if isinstance(branches, list) and branches:
            return max(self.bytes(branch) for branch in branches)
        if "const" in node:
            return _literal(node["const"])
        if isinstance(node.get("enum"), list) and node["enum"]:
            return max(_literal(value) for value in node["enum"])
        kinds = _types(node)
        if not kinds:
            return self._object(node) if "properties" in node else UNBOUNDED
        return max(self._typed(kind, node) for kind in kinds)

    def _typed(self, kind: str, node: dict[str, Any]) -> float:
        if kind == "string":
            return self._string(node)
        if kind == "integer":
            return _INTEGER
        if kind == "number":
            return _NUMBER
        if kind == "boolean":
            return len("false") + _SPACE
        if kind == "null":
            return len("null") + _SPACE
        if kind == "object":
            return self._object(node)
        if kind == "array":
            return self._array(node)
        return UNBOUNDED

    def _string(self, node: dict[str, Any]) -> float:
        quotes = 2 + _SPACE
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            chars = pattern_max_chars(pattern)
            if chars is None:
                return UNBOUNDED
            return quotes + chars * (1 if pattern_is_ascii(pattern) else self.bytes_per_char)
        if node.get("format") in _FORMATS:
            return quotes + _FORMATS[node["format"]]
        if "maxLength" not in node:
            return UNBOUNDED
        return quotes + int(node["maxLength"]) * self.bytes_per_char

    def _object(self, node: dict[str, Any]) -> float:
        extra = node.get("additionalProperties")
        structured = "properties" in node or extra is False  # else the grammar's free-form object
        if not structured or extra not in (None, False) or "patternProperties" in node:
            return UNBOUNDED
        properties = node.get("properties") or {}
        total: float = 2 + _SPACE
        for name, value in properties.items():
            total += _literal(name) + 1 + _SPACE + self.bytes(value) + 1 + _SPACE  # "name": value,
        return total

    def _array(self, node: dict[str, Any]) -> float:
        total: float = 2 + _SPACE
        prefix = node.get("prefixItems")
        items = node.get("items")
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, node.get("additionalItems", False)
        fixed = list(prefix) if isinstance(prefix, list) else []
        total += sum(self.bytes(item) + 1 + _SPACE for item in fixed)
        if items is False:
            return total
        count = node.get("maxItems")
        if count is None:
            return UNBOUNDED
        more = max(0, int(count) - len(fixed))
        return total + (more * (self.bytes(items if items is not None else True) + 1 + _SPACE) if more else 0)

    def _resolve(self, ref: str) -> Any:
        node: Any = self.root
        for raw in ref.removeprefix("#").split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node


def _literal(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode()) + _SPACE
