"""The refactoring planner: turns a request into one operation on symbols that exist.

On the embedded 135M model, asked to extract a rename from differently phrased requests
with `symbol` constrained to the repository's own names and `new_name` to an identifier
pattern, the answer was right 5 times out of 5 (DESIGN.md); free-form plans were not.
So the operation, the symbol and the module are choices, never free text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, create_model

from turnout.agents._base import RoleAgent, as_request
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.tag import Content

Operation = Literal["rename", "move", "fstrings", "type_hints", "edit", "nothing"]
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_SYMBOLS = 400


class RefactorPlan(BaseModel):
    """What to change: one deterministic operation where one fits, else a model-written edit."""

    operation: Operation
    symbol: str | None = Field(None, description="The existing name the change is about.")
    new_name: str | None = Field(None, pattern=IDENTIFIER, description="For rename.")
    target_module: str | None = Field(None, description="For move: dotted module to move into.")


@lru_cache(maxsize=64)
def refactor_plan_schema(
    symbols: tuple[str, ...], modules: tuple[str, ...], new_names: tuple[str, ...] = ()
) -> type[RefactorPlan]:
    """`RefactorPlan` whose symbol and target module must be ones the repository has, and
    whose new name must be one the request wrote (when it wrote any)."""
    fields: dict[str, Any] = {}
    if new_names:
        fields["new_name"] = (Literal[tuple(new_names)] | None, None)  # type: ignore[valid-type]
    if symbols and len(symbols) <= MAX_SYMBOLS:
        fields["symbol"] = (Literal[tuple(symbols)] | None, None)  # type: ignore[valid-type]
    if modules and len(modules) <= MAX_SYMBOLS:
        fields["target_module"] = (Literal[tuple(modules)] | None, None)  # type: ignore[valid-type]
    return create_model("RefactorPlan", __base__=RefactorPlan, **fields) if fields else RefactorPlan


class RefactorPlanner(RoleAgent[RefactorPlan]):
    agent_name: ClassVar[str] = "refactor_planner"
    role: ClassVar[RoleName] = "planner"
    input_key: ClassVar[str] = "request"
    output_key: ClassVar[str] = "plan"
    instructions: ClassVar[str] = (
        "You turn a refactoring request into one operation. rename: give the existing symbol "
        "and its new_name. move: give the symbol and the target_module. fstrings: convert "
        "string formatting to f-strings. type_hints: add type hints to the symbol. edit: any "
        "other code change (give the symbol it is "
        "about). nothing: the request names nothing in this repository. Reply with JSON only."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_tokens=kwargs.pop("max_tokens", 256), **kwargs)

    async def run(
        self,
        request: Content,
        *,
        symbols: Sequence[str] = (),
        modules: Sequence[str] = (),
        new_names: Sequence[str] = (),
    ) -> RefactorPlan:
        """`symbols`/`modules`/`new_names`: the candidates (narrow them to the request first:
        a small model picks well among a few and badly among hundreds)."""
        prompt = tag.compose("Request: {request}", request=as_request(request))
        if symbols and len(symbols) <= 20:
            prompt = prompt + tag.compose("\nSymbols: {symbols}", symbols=tag.signature(", ".join(symbols)))
        schema = refactor_plan_schema(tuple(symbols), tuple(modules), tuple(new_names))
        result = await self.ask(prompt, schema)
        assert isinstance(result.output, RefactorPlan)
        return RefactorPlan.model_validate(result.output.model_dump())
