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
    """The signatures of the definitions in `code` (methods indented under their class)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return [m.group(1).strip() for m in _DEFINITION_LINE.finditer(code)]
    lines: list[str] = []

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                prefix = "async def" if isinstance(child, ast.AsyncFunctionDef) else "def"
                returns = f" -> {ast.unparse(child.returns)}" if child.returns else ""
                lines.append(f"{'    ' * depth}{prefix} {child.name}({ast.unparse(child.args)}){returns}")
                visit(child, depth + 1)
            elif isinstance(child, ast.ClassDef):
                bases = ", ".join(ast.unparse(b) for b in [*child.bases, *child.keywords])
                lines.append(f"{'    ' * depth}class {child.name}" + (f"({bases})" if bases else ""))
                visit(child, depth + 1)

    visit(tree, 0)
    return lines


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
    from turnout.engines._policy import summarizer_reaches_remote

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
