"""Plans from plain words, without a model, and the coverage check every plan goes through.

    reading = read_request("Rename a, b and c to x, y and z, keeping the old names as deprecated aliases")
    reading.plan            # three renames with keep_alias="deprecated"
    reading.left_over       # parts of the request no pattern understood ([] here)
    not_done = uncovered(request, plan, known_names)   # clauses no operation covers

The patterns cover the phrasings people write most ("rename A to B", "rename A, B and C to X,
Y and Z", "A should be called B", "move A and B from m into new module n", "keeping the old
name as a (deprecated) alias", "convert all string formatting to f-strings", "inline A",
"extract lines 10-14 of f.py into helper", "add parameter p=None to f", "remove parameter p
from f", "add type hints to pkg/calc.py and scale, checked with mypy --strict", "add a
docstring to f" (a model-written edit whose postcondition checks the docstring); "it" after a
rename or a move means what it made). What they do not cover goes to the planner model. Either way, `uncovered` lists
each clause of the request that no operation covers (a name nobody acts on, an alias, a new
module, "all", "typed"), and a run with any such clause is never `succeeded`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from turnout.tools.operations import (
    AddTypeHints,
    ChangeSignature,
    ConvertFormatting,
    Edit,
    Extract,
    Inline,
    Move,
    Operation,
    Plan,
    Rename,
    parse_plan,
)

_NAME = r"`?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*`?(?:\(\))?"
_END = r"(?=\s*(?:$|[,.;:)]|\s(?:and|then|keeping|keep|leaving|with|but|while|so|in|from|into|to|as)\b))"
_NAMES = rf"{_NAME}(?:\s*,\s*{_NAME})*(?:\s*,?\s+and\s+{_NAME})?{_END}"
_TARGET = rf"(?:[\w./-]+\.py(?::[\w.]+)?|[\w-]+(?:/[\w-]+)*/|{_NAME})"
_TARGETS = rf"{_TARGET}(?:\s*,\s*{_TARGET})*(?:\s*,?\s+and\s+{_TARGET})?{_END}"
_KIND = r"(?:the\s+)?(?:(?:functions?|class(?:es)?|methods?|modules?|constants?|variables?|names?)\s+(?:(?:called|named)\s+)?)?"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "rename": re.compile(rf"\brename\s+{_KIND}(?P<olds>{_NAMES})\s+(?:to|as|into)\s+(?P<news>{_NAMES})", re.IGNORECASE),
    "should_be": re.compile(rf"(?P<olds>{_NAME})\s+(?:(?:should|to)\s+be\s+(?:called|named|renamed(?:\s+to)?)|"
                            rf"renamed\s+(?:to|as))\s+(?P<news>{_NAME})", re.IGNORECASE),
    "move": re.compile(rf"\bmove\s+{_KIND}(?P<names>{_NAMES})\s+(?:from\s+(?:module\s+)?(?P<source>{_NAME})\s+)?"
                       rf"(?:in)?to\s+(?:an?\s+|the\s+)?(?P<new>new\s+)?(?:module\s+)?(?P<target>{_NAME})(?:\s+module)?",
                       re.IGNORECASE),
    "alias": re.compile(rf"\b(?:keep(?:ing)?|leav(?:e|ing)|with)\s+(?:the\s+)?(?:old\s+names?\s+|{_NAMES}\s+)?"
                        r"(?:(?:as|working\s+as)\s+)?(?:an?\s+)?(?P<deprecated>deprecated\s+)?alias(?:es)?"
                        r"|\bkeep(?:ing)?\s+(?:the\s+)?old\s+names?\s+(?:working|importable|available)"
                        r"(?P<deprecated2>\s+(?:but|with|and)\s+(?:a\s+)?deprecat\w*(?:\s+warnings?)?)?", re.IGNORECASE),
    "formatting": re.compile(r"\b(?:convert|rewrite|change|turn|switch|use|replace)\b[^;\n]*?"
                             r"(?:f-?strings?|string\s+formatting|%-?formatting|\.format\(\)\s*calls?)"
                             r"(?:[^;\n]*\bf-?strings?\b)?(?:\s+everywhere)?"
                             r"(?P<where>\s+in\s+(?P<paths>[\w/-]+(?:\.py|/)(?:\s*,\s*[\w/-]+(?:\.py|/))*))?", re.IGNORECASE),
    "inline": re.compile(rf"\binline\s+{_KIND}(?P<name>{_NAME})", re.IGNORECASE),
    "extract": re.compile(rf"\bextract\s+lines?\s+(?P<start>\d+)\s*(?:-|–|to|through)\s*(?P<end>\d+)\s+(?:of|in|from)\s+"
                          rf"(?P<path>[\w./-]+\.py)\s+into\s+(?:an?\s+)?(?:new\s+)?(?:helper|function|method)?\s*"
                          rf"(?:called|named)?\s*(?P<new>{_NAME})", re.IGNORECASE),
    "add_parameter": re.compile(rf"\badd\s+(?:an?\s+)?(?:optional\s+|new\s+)?(?:keyword\s+)?(?:parameter|argument)\s+"
                                rf"(?P<name>{_NAME})(?:\s*=\s*(?P<default>[^\s,;]+)|\s+with\s+(?:a\s+)?default\s+"
                                rf"(?:of\s+)?(?P<default2>[^\s,;]+))?\s+to\s+{_KIND}(?P<function>{_NAME})", re.IGNORECASE),
    "remove_parameter": re.compile(rf"\b(?:remove|drop)\s+(?:the\s+)?(?:parameter|argument)\s+(?P<name>{_NAME})\s+"
                                   rf"from\s+{_KIND}(?P<function>{_NAME})", re.IGNORECASE),
    "docstring": re.compile(rf"\b(?:add|write)\s+(?:an?\s+)?(?:(?:short|one-line|proper)\s+)?docstrings?\s+(?:to|for)\s+"
                            rf"{_KIND}(?P<names>{_NAMES})", re.IGNORECASE),
    "type_hints": re.compile(rf"\b(?:add|write|put)\s+(?:(?:python|static|full|missing)\s+)?(?:type[ -]?(?:hints?|annotations?)|"
                             rf"annotations?|types)\s+(?:to|in|for|on)\s+(?:the\s+)?(?:(?:functions?|module|file|class)\s+)?"
                             rf"(?P<targets>{_TARGETS})(?P<strict>[^.;]*?\b(?:mypy\s+)?(?:--)?strict\b)?", re.IGNORECASE),
}
_CHANGE_VERB = re.compile(
    r"\b(?:make|change|add|remove|delete|drop|fix|replace|split|merge|optimi[sz]e|speed|simplify|refactor|clean|update|"
    r"convert|document|rewrite|rename|move|extract|inline|annotate|deprecate|reorder|sort|use)\w*\b", re.IGNORECASE)
_FILLER = frozenset(
    ["a", "an", "and", "also", "as", "be", "but", "can", "could", "everywhere", "for", "i", "i'd", "in", "it", "its", "it's", "just", "me", "make", "of", "old", "please", "so", "that", "the", "then", "them", "this", "to", "too", "too", "we", "with", "would", "you", "your"])
_CONNECTORS = frozenset(["and", "also", "but", "then", "please", "so", "too", "i", "we", "you", "it", "its", "it's", "that"])
_FORMATTING_WORDS = frozenset({"f-string", "f-strings", "str.format", ".format", "format"})
_CODE_WORD = re.compile(r"`[^`]+`|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+|[A-Za-z]*_\w*|[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*")


def _name(text: str) -> str:
    return text.strip().strip("`").removesuffix("()")


def _split_names(text: str) -> list[str]:
    return [_name(part) for part in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", text.strip()) if part.strip()]


@dataclass
class Reading:
    """What the patterns understood: operations, and the parts of the request they did not."""

    operations: list[dict[str, Any]] = field(default_factory=list)
    left_over: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def plan(self) -> Plan | None:
        return parse_plan({"operations": self.operations}, "the request") if self.operations else None

    def unread_changes(self) -> list[str]:
        """Left-over pieces that ask for a change ("and make it faster"), not ones that explain
        ("so it reads clearer")."""
        return [f"{piece}: asked for, but no operation does it" for piece in self.left_over if _CHANGE_VERB.search(piece)]


def read_request(request: str) -> Reading:
    """The operations a request's plain words ask for. `problems` says where the words were
    understood but do not make an operation (three old names and two new ones)."""
    reading = Reading()
    spans: list[tuple[int, int]] = []
    found_at: list[tuple[int, dict[str, Any]]] = []
    renames: list[dict[str, Any]] = []
    for kind in ("rename", "should_be"):
        for found in _PATTERNS[kind].finditer(request):
            olds, news = _split_names(found["olds"]), _split_names(found["news"])
            if len(olds) != len(news):
                reading.problems.append(f"{len(olds)} old names and {len(news)} new ones in {found[0]!r}")
                continue
            made = [{"op": "rename", "old": old, "new": new.rsplit(".", 1)[-1]} for old, new in zip(olds, news, strict=True)]
            renames += made
            found_at += [(found.start(), op) for op in made]
            spans.append(found.span())
    for found in _PATTERNS["alias"].finditer(request):
        spans.append(found.span())
        deprecated = bool(found["deprecated"] or found["deprecated2"]) or "deprecat" in found[0].lower()
        for rename in renames:
            rename["keep_alias"] = "deprecated" if deprecated else "plain"
    for found in _PATTERNS["move"].finditer(request):
        operation: dict[str, Any] = {"op": "move", "symbols": _split_names(found["names"]), "to_module": _name(found["target"])}
        if found["source"]:
            operation["from_module"] = _name(found["source"])
        found_at.append((found.start(), operation))
        spans.append(found.span())
    for found in _PATTERNS["formatting"].finditer(request):
        paths = [p.strip() for p in found["paths"].split(",")] if found["paths"] else None
        found_at.append((found.start(), {"op": "convert_formatting", "paths": paths}))
        spans.append(found.span())
    for found in _PATTERNS["inline"].finditer(request):
        found_at.append((found.start(), {"op": "inline", "name": _name(found["name"])}))
        spans.append(found.span())
    for found in _PATTERNS["extract"].finditer(request):
        found_at.append((found.start(), {"op": "extract", "path": found["path"], "start_line": int(found["start"]),
                                   "end_line": int(found["end"]), "new_name": _name(found["new"])}))
        spans.append(found.span())
    for found in _PATTERNS["add_parameter"].finditer(request):
        default = found["default"] or found["default2"] or "None"
        found_at.append((found.start(), {"op": "change_signature", "function": _name(found["function"]),
                                   "add": [{"name": _name(found["name"]), "default": default}]}))
        spans.append(found.span())
    for found in _PATTERNS["remove_parameter"].finditer(request):
        found_at.append((found.start(), {"op": "change_signature", "function": _name(found["function"]),
                                   "remove": [_name(found["name"])]}))
        spans.append(found.span())
    for found in _PATTERNS["type_hints"].finditer(request):
        found_at.append((found.start(), {"op": "add_type_hints", "targets": _split_names(found["targets"]),
                                         "strictness": "strict" if found["strict"] else "typed-defs"}))
        spans.append(found.span())
    for found in _PATTERNS["docstring"].finditer(request):
        for name in _split_names(found["names"]):
            found_at.append((found.start(), {"op": "edit", "symbol": name, "instruction": f"add a docstring to {name}"}))
        spans.append(found.span())
    reading.operations = _pronouns_resolved([op for _start, op in sorted(found_at, key=lambda item: item[0])])
    reading.left_over = _left_over(request, spans)
    return reading


def _pronouns_resolved(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """"…and add type hints to it": `it`/`them` are what the operation before made or named."""
    made: list[str] = []
    for op in operations:
        if op["op"] == "add_type_hints" and made and {t.lower() for t in op["targets"]} <= {"it", "them"}:
            op["targets"] = list(made)
        made = ([op["new"]] if op["op"] == "rename" else op.get("symbols") or ([op["name"]] if "name" in op else []))
    return operations


def _left_over(request: str, spans: list[tuple[int, int]]) -> list[str]:
    """The stretches of the request outside every match that still say something, each
    without the filler words at its ends ("and make it faster" -> "make it faster")."""
    kept, last = [], 0
    for start, end in sorted(spans):
        kept.append(request[last:start])
        last = max(last, end)
    kept.append(request[last:])
    left = []
    for piece in re.split(r"[.;,\n]|\bthen\b", " ".join(kept)):
        words = re.findall(r"[\w'`.()-]+", piece)
        if any(w.lower().strip("`") not in _FILLER for w in words):
            said = [i for i, w in enumerate(words) if w.lower() not in _CONNECTORS]
            left.append(" ".join(words[said[0]:said[-1] + 1]))
    return left


_CLAUSE_CHECKS: tuple[tuple[re.Pattern[str], str, Any], ...] = (
    (re.compile(r"\bdeprecat", re.IGNORECASE), "keep the old name as a deprecated alias",
     lambda ops: any(isinstance(o, Rename) and o.keep_alias == "deprecated" for o in ops)),
    (re.compile(r"\balias|\bold\s+names?\s+(?:\w+\s+)?(?:work|importable|available|usable)|\bbackwards?[- ]compatib", re.IGNORECASE),
     "keep the old name as an alias", lambda ops: any(isinstance(o, Rename) and o.keep_alias != "none" for o in ops)),
    (re.compile(r"\bnew\s+module\b|\bmove\b", re.IGNORECASE), "move into a module", lambda ops: any(isinstance(o, Move) for o in ops)),
    (re.compile(r"f-?strings?|string\s+formatting|%-?format|\.format\(", re.IGNORECASE), "convert string formatting",
     lambda ops: any(isinstance(o, ConvertFormatting) for o in ops)),
    (re.compile(r"(?:f-?strings?|formatting)[^.;]*\b(?:all|every\w*)\b|\b(?:all|every\w*)\b[^.;]*(?:f-?strings?|formatting)",
                re.IGNORECASE), "convert formatting in every file",
     lambda ops: any(isinstance(o, ConvertFormatting) and o.paths is None for o in ops)),
    (re.compile(r"\bextract|\binto\s+(?:an?\s+)?(?:new\s+)?(?:helper|function)\b|\bsplit\s+out", re.IGNORECASE), "extract a function",
     lambda ops: any(isinstance(o, Extract) for o in ops)),
    (re.compile(r"\binline\b", re.IGNORECASE), "inline", lambda ops: any(isinstance(o, Inline) for o in ops)),
    (re.compile(r"\b(?:parameter|argument|signature)s?\b", re.IGNORECASE), "change a signature",
     lambda ops: any(isinstance(o, ChangeSignature) for o in ops)),
    (re.compile(r"\bdocstrings?\b", re.IGNORECASE), "add a docstring",
     lambda ops: any(isinstance(o, Edit) and "docstring" in o.instruction.lower() for o in ops)),
    (re.compile(r"\btype[ -]?hints?|\btyped\b|\bannotat", re.IGNORECASE), "add type hints",
     lambda ops: any(isinstance(o, AddTypeHints) for o in ops)),
    (re.compile(r"(?:type[ -]?hints?|\btyped\b|\bannotat|\bmypy\b)[^.;]*\bstrict\b", re.IGNORECASE),
     "type hints that pass mypy --strict", lambda ops: any(isinstance(o, AddTypeHints) and o.strictness == "strict" for o in ops)),
)


def uncovered(request: str, plan: Plan, known_names: Iterable[str] = ()) -> list[str]:
    """Clauses of `request` that no operation of `plan` covers: a code name no operation is
    about, or an asked-for kind of change (alias, move, formatting everywhere, extract, inline,
    signature, type hints) that no operation makes."""
    ops: list[Operation] = list(plan.operations)
    covered = {part for op in ops for name in op.names() for part in (name, *re.split(r"[./]", name))}
    known = set(known_names)
    missing = []
    for word in dict.fromkeys(_name(w) for w in _CODE_WORD.findall(request)):
        if word.lower() in _FILLER or word.lower() in _FORMATTING_WORDS or re.fullmatch(r"[\d.]+", word):
            continue
        if word not in covered and word.rsplit(".", 1)[-1] not in covered and not word.endswith(".py"):
            missing.append(f"{word}: named in the request, but no operation is about it")
    for word in dict.fromkeys(re.findall(r"\b[A-Za-z_]\w*\b", request)):
        if word in known and word not in covered and f"{word}: named in the request, but no operation is about it" not in missing:
            missing.append(f"{word}: named in the request, but no operation is about it")
    for pattern, what, done in _CLAUSE_CHECKS:
        if pattern.search(request) and not done(ops):
            missing.append(f"{what}: asked for, but no operation does it")
    return missing
