"""The limits a JSON schema must keep before turnout builds anything from it.

Every output schema passes here, in two steps:

- `check_schema` (every call and `turnout serve` request, local or remote): at most
  `MAX_DEPTH` levels of nesting, `MAX_SUBSCHEMAS` subschemas, `MAX_SCHEMA_BYTES` of JSON,
  `MAX_PROPERTIES` properties per object, `MAX_ENUM` values per enum, `MAX_BRANCHES`
  branches per `anyOf`/`oneOf`/`allOf`; `$ref` only to a JSON pointer inside the document
  (`#/$defs/Item`). Nothing is ever fetched, whatever the interpreter's flags.
- `grammar_schema` (what every local engine decodes under, built from the checked schema):
  also no recursive `$ref`, no keyword a grammar cannot honour (`not`, `if`, …), patterns
  anchored (`^…$`) with no `(?…)` groups or back-references, and no repetition past
  `MAX_REPEAT`. Upper bounds past it (`maxLength`, `maxItems`, `{m,n}` in a pattern) only
  limit length, so the grammar drops them and validation of the answer still enforces them;
  lower bounds past it, and patterns that would unroll past `_schema_patterns.MAX_PATTERN_COST`, are refused.

llama.cpp's grammar parser recurses once per nested optional group: `maxItems: 3000` or
`^a{0,5000}$` overflowed its C stack and killed the process (measured: 1,000 held, 2,000
crashed). A schema past a limit raises `SchemaRefused`, a `UserError` (400 on the server)
that names the limit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from turnout.engines._schema_patterns import MAX_REPEAT, grammar_pattern
from turnout.errors import SchemaRefused

MAX_DEPTH = 32
MAX_SUBSCHEMAS = 2_000
MAX_SCHEMA_BYTES = 64 * 1024
MAX_PROPERTIES = 128
MAX_ENUM = 512
MAX_BRANCHES = 64


# Keywords whose value is one subschema, a list of them, or a name → subschema mapping.
_ONE = ("items", "additionalItems", "additionalProperties", "contains", "propertyNames", "not",
        "if", "then", "else", "unevaluatedItems", "unevaluatedProperties")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Keywords a decoding grammar cannot express; validation could, but the model could not be
# kept inside them while it writes.
_UNGRAMMATICAL = ("not", "if", "then", "else", "dependentSchemas", "dependencies",
                  "unevaluatedItems", "unevaluatedProperties", "contains", "$dynamicRef",
                  "$recursiveRef", "$anchor", "$dynamicAnchor", "propertyNames")


def check_schema(schema: Any) -> None:
    """Refuse a schema past the limits every call keeps (see the module docstring)."""
    if not isinstance(schema, (dict, bool)):
        raise SchemaRefused(f"a JSON schema is an object (or true/false), not {type(schema).__name__}")
    count = 0
    for path, node, depth in _subschemas(schema):
        count += 1
        if depth > MAX_DEPTH:
            raise SchemaRefused(f"the schema nests deeper than {MAX_DEPTH} levels ({_where(path)})")
        if count > MAX_SUBSCHEMAS:
            raise SchemaRefused(f"the schema has more than {MAX_SUBSCHEMAS:,} subschemas")
        if isinstance(node, dict):
            _check_node(path, node, root=not path)
    try:
        size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError) as exc:
        raise SchemaRefused(f"the schema is not plain JSON: {exc}") from None
    if size > MAX_SCHEMA_BYTES:
        raise SchemaRefused(f"the schema is {size:,} bytes of JSON; the limit is {MAX_SCHEMA_BYTES:,}")
    for path, ref in _refs(schema):
        _resolve(schema, ref, path)


def grammar_schema(schema: Any) -> dict[str, Any]:
    """The checked schema as a local engine may decode under it: length-only bounds past
    `MAX_REPEAT` dropped (validation still enforces them), anything else past a limit refused."""
    check_schema(schema)
    if schema is True or schema == {}:
        return {}
    if schema is False:
        raise SchemaRefused("the schema is `false`: no answer can follow it")
    _refuse_recursion(schema)
    return _for_grammar(schema, ())


def _check_node(path: tuple[str, ...], node: dict[str, Any], *, root: bool) -> None:
    where = _where(path)
    properties = node.get("properties")
    if isinstance(properties, dict) and len(properties) > MAX_PROPERTIES:
        raise SchemaRefused(f"{where} has {len(properties):,} properties; the limit is {MAX_PROPERTIES}")
    enum = node.get("enum")
    if isinstance(enum, list) and len(enum) > MAX_ENUM:
        raise SchemaRefused(f"{where} has an enum of {len(enum):,} values; the limit is {MAX_ENUM}")
    for keyword in ("anyOf", "oneOf", "allOf"):
        branches = node.get(keyword)
        if isinstance(branches, list) and len(branches) > MAX_BRANCHES:
            raise SchemaRefused(f"{where} has {len(branches):,} {keyword} branches; the limit is {MAX_BRANCHES}")
    for keyword in ("$id", "id"):
        if not root and isinstance(node.get(keyword), str):
            raise SchemaRefused(
                f"{where} sets {keyword}: only the root may name itself, so every $ref stays in this document"
            )
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and (ref == "#" or ref.startswith("#/"))):
        raise SchemaRefused(
            f"{where} has $ref {ref!r}: only references inside the schema (#/$defs/Name) are "
            "followed; nothing is fetched. Put the referenced schema under $defs."
        )


def _subschemas(schema: Any) -> Iterator[tuple[tuple[str, ...], Any, int]]:
    """Every subschema with its path and depth, breadth-first (no recursion: a schema nested
    thousands deep is reported, not a RecursionError)."""
    pending: list[tuple[tuple[str, ...], Any, int]] = [((), schema, 0)]
    while pending:
        path, node, depth = pending.pop()
        yield path, node, depth
        if not isinstance(node, dict) or depth > MAX_DEPTH:
            continue
        for child_path, child in _children(node):
            pending.append(((*path, *child_path), child, depth + 1))


def _children(node: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for keyword in _ONE:
        child = node.get(keyword)
        if isinstance(child, (dict, bool)):
            yield (keyword,), child
        elif keyword == "items" and isinstance(child, list):  # draft 4-7 tuple form
            for index, item in enumerate(child):
                yield (keyword, str(index)), item
    for keyword in _LIST:
        children = node.get(keyword)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield (keyword, str(index)), child
    for keyword in _MAP:
        children = node.get(keyword)
        if isinstance(children, dict):
            for name, child in children.items():
                yield (keyword, str(name)), child


def _refs(schema: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    for path, node, _ in _subschemas(schema):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            yield path, node["$ref"]


def _resolve(schema: Any, ref: str, path: tuple[str, ...]) -> Any:
    """The subschema a `#/…` pointer names, or SchemaRefused saying which part is missing."""
    node = schema
    for raw in ref.removeprefix("#").split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise SchemaRefused(f"{_where(path)} has $ref {ref!r}, which names nothing in the schema")
    if not isinstance(node, (dict, bool)):
        raise SchemaRefused(f"{_where(path)} has $ref {ref!r}, which names a {type(node).__name__}, not a schema")
    return node


def _refuse_recursion(schema: Any) -> None:
    """A `$ref` that reaches itself describes answers of unbounded size, which no token
    budget can promise to close; the effective depth through refs must keep MAX_DEPTH too."""
    targets = {ref for _, ref in _refs(schema)}
    edges: dict[str, set[str]] = {}
    for ref in targets:
        edges[ref] = {inner for _, inner in _refs(_resolve(schema, ref, ()))}
        if ref == "#":
            edges[ref] = targets
    state: dict[str, int] = {}

    def visit(ref: str, trail: tuple[str, ...]) -> None:
        if state.get(ref) == 2:
            return
        if state.get(ref) == 1:
            raise SchemaRefused(
                f"the schema is recursive ({' → '.join((*trail, ref))}): local constrained decoding "
                "needs answers of bounded size; unroll it to the depth you need"
            )
        state[ref] = 1
        for inner in sorted(edges.get(ref, ())):
            visit(inner, (*trail, ref))
        state[ref] = 2

    for ref in sorted(targets):
        visit(ref, ())


def _for_grammar(node: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    where = _where(path)
    for keyword in _UNGRAMMATICAL:
        if keyword in node:
            raise SchemaRefused(
                f"{where} uses {keyword!r}, which local constrained decoding cannot enforce; "
                "express it with type, enum, properties, items, anyOf or a pattern"
            )
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("maxItems", "maxProperties") and isinstance(value, int) and value > MAX_REPEAT:
            continue
        if key in ("minLength", "minItems", "minProperties") and isinstance(value, int) and value > MAX_REPEAT:
            raise SchemaRefused(f"{where} sets {key} {value:,}; local decoding unrolls at most {MAX_REPEAT}")
        if key == "pattern" and isinstance(value, str):
            out[key] = grammar_pattern(value, where)
        elif key in _ONE and isinstance(value, (dict, bool)):
            out[key] = _for_grammar(value, (*path, key))
        elif key in (*_LIST, "items") and isinstance(value, list):
            out[key] = [_for_grammar(item, (*path, key, str(i))) for i, item in enumerate(value)]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: _for_grammar(item, (*path, key, str(name))) for name, item in value.items()}
        else:
            out[key] = value
    if (choices := _integer_choices(node)) is not None:
        out["enum"] = choices
    return out


MAX_INTEGER_CHOICES = 64


def _integer_choices(node: dict[str, Any]) -> list[int] | None:
    """An integer between close bounds as the list of its values: llama-cpp-python's converter
    ignores `minimum`/`maximum`, an enum it honours (and it costs fewer tokens than 16 digits)."""
    if node.get("type") != "integer" or "enum" in node or "const" in node:
        return None
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
        low = max(low if isinstance(low, (int, float)) else node["exclusiveMinimum"], node["exclusiveMinimum"] + 1)
    if isinstance(node.get("exclusiveMaximum"), (int, float)) and not isinstance(node["exclusiveMaximum"], bool):
        high = min(high if isinstance(high, (int, float)) else node["exclusiveMaximum"], node["exclusiveMaximum"] - 1)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return None
    first, last = math.ceil(low), math.floor(high)
    if last < first or last - first >= MAX_INTEGER_CHOICES:
        return None
    return [value for value in range(first, last + 1) if _multiple(node, value)]


def _multiple(node: dict[str, Any], value: int) -> bool:
    step = node.get("multipleOf")
    return not isinstance(step, (int, float)) or step <= 0 or value % step == 0


def _where(path: tuple[str, ...]) -> str:
    if not path:
        return "the schema"
    shown = path if len(path) <= 8 else ("…", *path[-6:])
    return "the schema at #/" + "/".join(shown)


def answer_problems(schema: dict[str, Any], text: str) -> str | None:
    """Why `text` is not a JSON value `schema` accepts (the first few reasons), or None.
    References resolve inside the schema only: the registry has no way to fetch."""
    from jsonschema import validators  # type: ignore[import-untyped]  # litellm's dependency
    from referencing import Registry

    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"not JSON: {exc}"
    validator = validators.validator_for(schema)(schema, registry=Registry())
    problems = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {_why(error)}"
        for error in validator.iter_errors(value)
    ]
    return "; ".join(problems[:5]) or None


def _why(error: Any) -> str:
    """jsonschema's message, or (where it quotes a long value) the keyword that failed."""
    if len(error.message) <= 160:
        return str(error.message)
    shown = json.dumps(error.validator_value)
    return f"fails {error.validator} {shown if len(shown) <= 80 else shown[:80] + '…'}"
