"""The retriever: rewrites a question into search terms on the local model, then searches
the local code index. No embeddings API, nothing leaves the machine.

The model may name symbols only from the index's own list, so a small model cannot invent
a function that does not exist.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, create_model

from turnout.agents._base import RoleAgent, as_request
from turnout.agents.schemas import Evidence, SearchTerms, Snippet
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.schema_bounds import grammar_schema
from turnout.engines.schema_budget import SCHEMA_MAX_TOKENS, fit_to_budget
from turnout.engines.tag import Content
from turnout.errors import SchemaRefused, UserError

if TYPE_CHECKING:
    from turnout.tools.code_index import CodeIndex

MAX_SYMBOL_CHOICES = 400  # beyond this the enum costs more grammar than it saves


@lru_cache(maxsize=64)
def search_terms_schema(symbols: tuple[str, ...]) -> type[SearchTerms]:
    """`SearchTerms` plus up to 3 `symbols` chosen from the index's real names."""
    if not symbols or len(symbols) > MAX_SYMBOL_CHOICES:
        return SearchTerms
    choice: Any = Literal[tuple(symbols)]  # type: ignore[valid-type]
    return create_model(
        "SearchTerms", __base__=SearchTerms, symbols=(list[choice], Field(default_factory=list, max_length=3))
    )


class Retriever(RoleAgent[Evidence]):
    agent_name: ClassVar[str] = "retriever"
    role: ClassVar[RoleName] = "retriever"
    input_key: ClassVar[str] = "query"
    output_key: ClassVar[str] = "evidence"
    instructions: ClassVar[str] = (
        "You turn a question about a code base into search keywords: identifiers, words "
        "likely to appear in the code, and the names of functions or classes that may "
        "answer it. Reply with JSON only."
    )

    def __init__(self, index: CodeIndex | None = None, *, k: int = 5, **kwargs: Any) -> None:
        super().__init__(max_tokens=kwargs.pop("max_tokens", 512), **kwargs)
        self.index = index
        self.k = k

    async def run(self, request: Content, *, index: CodeIndex | None = None, model: str | None = None) -> Evidence:
        """Search for `request` (a plain string is the caller's question)."""
        question = as_request(request)
        request = str(question)
        index = index or self.index
        if index is None:
            raise UserError("Retriever needs a code index: Retriever(index=CodeIndex.build(repo_root))")
        result = await self.ask(tag.compose("Question: {q}", q=question), self._schema(index, request), model=model)
        terms = result.output
        assert isinstance(terms, SearchTerms)
        chosen: list[str] = list(getattr(terms, "symbols", []))
        keywords = [*terms.keywords, *chosen]
        hits = index.search(" ".join([request, *keywords]), k=self.k)
        # The model's own picks are names from the index (facts): they rank above every hit.
        top = max((hit.score for hit in hits), default=0.0) + 1.0
        ranked: dict[tuple[str, int], Snippet] = {}
        for name in chosen:
            for chunk in index.definitions(name)[:1]:
                ranked.setdefault((chunk.path, chunk.start_line), _snippet(chunk, score=top))
        for hit in hits:
            ranked.setdefault((hit.chunk.path, hit.chunk.start_line), _snippet(hit.chunk, score=hit.score))
        return Evidence(query=request, keywords=keywords, snippets=list(ranked.values())[: self.k])


    def _schema(self, index: CodeIndex, question: str) -> type[SearchTerms]:
        """Search terms plus symbols to choose from: the index's names (tests' only when the
        question is about tests), unless their choice could not close within max_tokens."""
        wanted = "test" in question.lower()
        names = {n for n in index.symbols() if wanted or not n.rsplit(".", 1)[-1].startswith("test")}
        schema = search_terms_schema(tuple(sorted(names)))
        try:  # 6 bytes a character: the widest any engine's grammar allows
            fit_to_budget(grammar_schema(schema.model_json_schema()), self.max_tokens or SCHEMA_MAX_TOKENS, 6)
        except SchemaRefused:
            return SearchTerms
        return schema


def _snippet(chunk: Any, *, score: float) -> Snippet:
    return Snippet(
        path=chunk.path,
        start_line=chunk.start_line,
        end_line=chunk.end_line,
        score=score,
        symbol=chunk.symbol,
        text=chunk.text,
    )
