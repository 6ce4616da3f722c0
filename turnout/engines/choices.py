"""A schema whose answers are a short list is a choice: decided by scoring, not by generating.

When every answer a schema admits can be listed — enums, consts, booleans, objects of
those, optional properties present or not — an engine that can score text decides the call
by one pass over the shared prompt and the log-probability of each listed answer, instead of
sampling token by token (`turnout.agents.Router` asks its agent and tier this way). The
answer is the same typed object through the same door and span; the engine reports every
answer's probability (`choice_probabilities` in its stats). `finite_answers` lists them, in
the schema's property order, or says None: not a choice.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from turnout.config import Settings

MAX_CHOICES = 64
_ABSENT = object()


def finite_answers(schema: dict[str, Any], limit: int = MAX_CHOICES) -> list[Any] | None:
    """Every value `schema` admits, when there are at most `limit`; None otherwise."""
    try:
        values = _values(schema, schema, limit)
    except _TooMany:
        return None
    return values if values is not None and 0 < len(values) <= limit else None


def scores_choices(role_or_model: str, settings: Settings | None = None) -> bool:
    """Whether the model behind `role_or_model` decides a choice schema by scoring (a local
    engine that can); elsewhere a choice is generated like any answer."""
    from turnout.engines._registry import get_engine, is_local_provider
    from turnout.engines._request import resolve

    provider, _, _ = resolve(role_or_model, settings).model.partition("/")
    return is_local_provider(provider) and get_engine(provider).scores_choices


def answer_text(value: Any) -> str:
    """An answer as the model would write it (the grammar allows one space after `:` and `,`)."""
    return json.dumps(value, ensure_ascii=False)


class _TooMany(Exception):
    pass


def _values(node: Any, root: dict[str, Any], limit: int) -> list[Any] | None:
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("$ref"), str):
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _values(target, root, limit)
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        found: list[Any] = []
        for branch in branches:
            values = _values(branch, root, limit)
            if values is None:
                return None
            found += [v for v in values if v not in found]
        return _capped(found, limit)
    if "const" in node:
        return [node["const"]]
    if isinstance(node.get("enum"), list):
        return _capped(list(node["enum"]), limit)
    kind = node.get("type")
    if kind == "boolean":
        return [False, True]
    if kind == "null":
        return [None]
    if kind == "object" and isinstance(node.get("properties"), dict) and node.get("additionalProperties") in (None, False):
        return _objects(node, root, limit)
    return None


def _objects(node: dict[str, Any], root: dict[str, Any], limit: int) -> list[Any] | None:
    required = set(node.get("required", []))
    columns: list[tuple[str, list[Any]]] = []
    for name, sub in node["properties"].items():
        values = _values(sub, root, limit)
        if values is None:
            return None
        columns.append((name, values if name in required else [_ABSENT, *values]))
    count = 1
    for _, values in columns:
        count *= len(values)
        if count > limit:
            raise _TooMany
    return [
        {name: value for (name, _), value in zip(columns, combination, strict=True) if value is not _ABSENT}
        for combination in itertools.product(*(values for _, values in columns))
    ]


def _capped(values: list[Any], limit: int) -> list[Any]:
    if len(values) > limit:
        raise _TooMany
    return values
