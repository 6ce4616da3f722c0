"""How the guard rewrites a part the policy forbids: redact it, outline code as its
signatures, or replace it with a summary written by a local model."""

from __future__ import annotations

import ast
import hashlib
import re
import textwrap
from typing import TYPE_CHECKING

from turnout.engines.tag import Part, compose, instructions
from turnout.errors import EgressRefused

if TYPE_CHECKING:
    from turnout.config import OnForbidden, Settings

_DEFINITION_LINE = re.compile(r"^\s*((?:async\s+)?def\s+\w+\s*\(.*?\)(?:\s*->\s*[^:]+)?|class\s+\w+(?:\([^)]*\))?)\s*:", re.MULTILINE)
SUMMARY_INSTRUCTIONS = (
    "You describe code for a reader who may not see it. In at most three sentences say what "
    "it does, which functions or classes it defines and what they take and return. Do not "
    "quote the code."
)
_summaries: dict[str, str] = {}
_MAX_CACHED = 2048


def outline(code: str) -> list[str]:
    """The signatures of the definitions in `code` (methods indented under their class), with
    every literal value (defaults, class keywords) shown as `...`: a default can hold a
    password or a DSN, and an outline promises names and shapes only."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return [_without_literals(m.group(1).strip()) for m in _DEFINITION_LINE.finditer(code)]
    lines: list[str] = []

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                prefix = "async def" if isinstance(child, ast.AsyncFunctionDef) else "def"
                returns = f" -> {ast.unparse(_elided(child.returns, annotation=True))}" if child.returns else ""
                arguments = ast.unparse(_arguments_elided(child.args))
                lines.append(f"{'    ' * depth}{prefix} {child.name}({arguments}){returns}")
                visit(child, depth + 1)
            elif isinstance(child, ast.ClassDef):
                keywords = [ast.keyword(k.arg, _elided(k.value)) for k in child.keywords]
                bases = ", ".join(ast.unparse(b) for b in [*map(_elided, child.bases), *keywords])
                lines.append(f"{'    ' * depth}class {child.name}" + (f"({bases})" if bases else ""))
                visit(child, depth + 1)

    visit(tree, 0)
    return lines


def _arguments_elided(arguments: ast.arguments) -> ast.arguments:
    for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
        if argument is not None and argument.annotation is not None:
            argument.annotation = _elided(argument.annotation, annotation=True)
    arguments.defaults = [_elided(default) for default in arguments.defaults]
    arguments.kw_defaults = [None if default is None else _elided(default) for default in arguments.kw_defaults]
    return arguments


def _elided(node: ast.expr, *, annotation: bool = False) -> ast.expr:
    """`node` (freshly parsed, so rewritten in place) with each literal value as `...`."""
    elided: ast.expr = _LiteralsElided(annotation).visit(node)
    return elided


class _LiteralsElided(ast.NodeTransformer):
    """None, True, False and `...` say nothing and stay; so does a string in an annotation
    that is a dotted name (a forward reference such as `"pkg.Model"`)."""

    def __init__(self, annotation: bool) -> None:
        self.annotation = annotation

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if value is None or isinstance(value, bool) or value is Ellipsis:
            return node
        if self.annotation and isinstance(value, str) and _DOTTED_NAME.fullmatch(value):
            return node
        return ast.copy_location(ast.Constant(value=...), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return ast.copy_location(ast.Constant(value=...), node)


_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_STRING_LITERAL = re.compile(r"""[rbuf]*("""  + '"""' + r"""[\s\S]*?""" + '"""' + r"""|'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")""", re.I)
_NUMBER_LITERAL = re.compile(r"(?<![\w.])-?\d[\w.]*")


def _without_literals(signature: str) -> str:
    """The regex fallback's signature (for code that does not parse) with literals elided."""
    return _NUMBER_LITERAL.sub("...", _STRING_LITERAL.sub("...", signature))


def _withheld(part: Part, policy: str) -> Part:
    return instructions(f"[{part.describe()} withheld by privacy policy {policy}]")


async def rewrite(part: Part, strategy: OnForbidden, policy: str, settings: Settings) -> Part:
    """`part` made fit to send under `policy` by `strategy` (never `refuse`: that raises earlier)."""
    if strategy == "outline" and part.kind == "code":
        signatures = outline(part.text)
        if not signatures:
            return _withheld(part, policy)
        header = f"[{part.describe()} withheld by privacy policy {policy}; the definitions it holds:]\n"
        return Part(kind="signature", text=header + "\n".join(signatures), origin=part.origin)
    if strategy == "summarize":
        text = await summarize(part, settings)
        header = f"[{part.describe()} withheld by privacy policy {policy}; a local model's summary:] "
        return Part(kind="summary", text=header + text, origin=part.origin)
    return _withheld(part, policy)


async def summarize(part: Part, settings: Settings) -> str:
    """A summary of `part` by `[policy] summarize_with` (its call goes through the guard like
    any other, so a summarizer that is not local is refused rather than sent the code)."""
    from turnout.engines._door import complete
    from turnout.engines._request import resolve
    from turnout.engines.privacy._policy import summarizer_reaches_remote

    target = resolve(settings.policy.summarize_with, settings)
    if summarizer_reaches_remote(target.role, target.model, target.api_base, settings):
        raise EgressRefused(
            f"egress refused: [policy] summarize_with = {settings.policy.summarize_with!r} can reach a remote "
            f"model, and summaries of {part.describe()} must be written locally; nothing was sent. Name a "
            "local role or model (e.g. llamacpp/smollm2).",
            role=target.role, model=target.model, policy=settings.policy.mode, part=part.describe(),
        )
    key = hashlib.sha256(f"{settings.policy.summarize_with}\0{part.kind}\0{part.text}".encode()).hexdigest()
    cached = _summaries.get(key)
    if cached is not None:
        return cached
    prompt = compose("Describe this {kind}:\n\n{content}", kind=instructions(part.kind.replace("_", " ")), content=part)
    result = await complete(
        settings.policy.summarize_with,
        [{"role": "system", "content": instructions(SUMMARY_INSTRUCTIONS)}, {"role": "user", "content": prompt}],
        max_tokens=160,
        temperature=0.0,
        settings=settings,
    )
    if len(_summaries) >= _MAX_CACHED:
        _summaries.clear()
    _summaries[key] = result.text.strip()
    return _summaries[key]
