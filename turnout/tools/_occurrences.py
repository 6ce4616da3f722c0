"""Where each identifier is used in a file: the data behind `CodeIndex.references`.

Python is read through `ast`, so a name in a comment, or the definition itself, is not a
use, while imports, attribute accesses and names listed as strings (`__all__`) are: the
set a rename has to touch. Other text files count whole-word matches. Both are lexical:
`x.add_line` counts as a use of every `add_line`, whatever `x` is.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _finish(found: dict[str, set[int]]) -> dict[str, list[int]]:
    return {name: sorted(lines) for name, lines in sorted(found.items())}


def python_occurrences(tree: ast.Module) -> dict[str, list[int]]:
    """identifier -> sorted line numbers where Python code uses it."""
    found: dict[str, set[int]] = defaultdict(set)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found[node.id].add(node.lineno)
        elif isinstance(node, ast.Attribute):
            found[node.attr].add(node.end_lineno or node.lineno)  # the attribute ends the node
        elif isinstance(node, ast.alias):
            for part in node.name.split("."):
                found[part].add(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for part in node.module.split("."):
                found[part].add(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and IDENTIFIER.fullmatch(node.value):
            found[node.value].add(node.lineno)
    return _finish(found)


def text_occurrences(text: str) -> dict[str, list[int]]:
    """identifier -> sorted line numbers of its whole-word matches."""
    found: dict[str, set[int]] = defaultdict(set)
    for number, line in enumerate(text.splitlines(), start=1):
        for word in IDENTIFIER.findall(line):
            found[word].add(number)
    return _finish(found)
