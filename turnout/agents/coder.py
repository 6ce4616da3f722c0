"""The coder: writes or changes code as whole-definition replacements for files it was shown.

Paths are constrained to the evidence it was given, and every edit must still parse as
Python before anyone acts on it (turnout computes diffs; the model never writes one).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field, create_model

from turnout.agents._base import RoleAgent, as_request
from turnout.agents.schemas import CodeResult, Evidence, FileEdit, Snippet
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.tag import Content, Tagged


@lru_cache(maxsize=256)
def code_result_schema(paths: tuple[str, ...], symbols: tuple[str, ...] = ()) -> type[CodeResult]:
    """`CodeResult` whose edits may only touch `paths` and name `symbols` (any path or name
    when none are given)."""
    if not paths:
        return CodeResult
    choice: Any = Literal[tuple(paths)]  # type: ignore[valid-type]
    fields: dict[str, Any] = {"path": (choice, ...)}
    if symbols:
        fields["symbol"] = (Literal[tuple(symbols)] | None, None)  # type: ignore[valid-type]
    edit = create_model("FileEdit", __base__=FileEdit, **fields)
    edits: Any = Field(default_factory=list, max_length=CodeResult.model_fields["edits"].metadata[0].max_length)
    return create_model("CodeResult", __base__=CodeResult, edits=(list[edit], edits))  # type: ignore[valid-type]


def edit_problems(result: CodeResult) -> list[str]:
    """Edits to Python files that do not parse (an empty list means all is well)."""
    problems = []
    for edit in result.edits:
        if edit.path.endswith(".py"):
            try:
                ast.parse(edit.code)
            except SyntaxError as exc:
                problems.append(f"{edit.path}: line {exc.lineno}: {exc.msg}")
    return problems


class Coder(RoleAgent[CodeResult]):
    agent_name: ClassVar[str] = "coder"
    role: ClassVar[RoleName] = "coder"
    input_key: ClassVar[str] = "request"
    output_key: ClassVar[str] = "code"
    instructions: ClassVar[str] = (
        "You are a careful programmer. Given a request and code from the repository, return "
        "each changed function or class as a whole (complete, valid code) with the file it "
        "belongs to, and a short explanation. Reply with JSON only."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_tokens=kwargs.pop("max_tokens", 3072), **kwargs)

    async def run(self, request: Content, *, evidence: Evidence | None = None, model: str | None = None) -> CodeResult:
        """`request`: what to change (a plain string is the caller's request); `evidence`: the
        code it may change, sent as tagged source text."""
        snippets = evidence.snippets if evidence else []
        prompt = tag.compose("Request: {request}", request=as_request(request))
        if snippets:
            prompt = prompt + tag.compose("\n\nCode:\n{code}", code=show_snippets(snippets))
        paths = tuple(sorted({s.path for s in snippets}))
        symbols = tuple(sorted({s.symbol for s in snippets if s.symbol}))
        result = await self.ask(prompt, code_result_schema(paths, symbols), model=model)
        assert isinstance(result.output, CodeResult)
        return CodeResult.model_validate(result.output.model_dump())


def show_snippets(snippets: list[Snippet]) -> Tagged:
    """Each snippet as `# path:lines` (a path) and its text (source code)."""
    return tag.join(
        (
            tag.compose(
                "# {where}\n{code}",
                where=tag.path(f"{s.path}:{s.start_line}-{s.end_line}"),
                code=tag.code(s.text, origin=f"{s.path}:{s.start_line}-{s.end_line}"),
            )
            for s in snippets
        ),
        "\n\n",
    )
