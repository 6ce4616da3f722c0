"""Free-text bounds fitted to max_tokens: the longest answer a grammar admits fits the budget,
and on the embedded model every answer closes."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from turnout.agents.schemas import CodeResult, Decision, Plan, Verdict
from turnout.engines import complete
from turnout.engines.schema_bounds import grammar_schema
from turnout.engines.schema_budget import fit_to_budget
from turnout.errors import PromptTooLong, SchemaRefused

WIDE = "😀"  # 4 bytes in UTF-8: the widest character a free-text field may hold


def longest(node: Any, root: dict[str, Any]) -> Any:
    """The longest JSON value the fitted schema admits: every optional property present, every
    list full, every free-text string at its bound in 4-byte characters, every number long."""
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return longest(target, root)
    if "anyOf" in node:
        values = [longest(branch, root) for branch in node["anyOf"]]
        return max(values, key=lambda v: len(json.dumps(v, ensure_ascii=False).encode()))
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return max(node["enum"], key=lambda v: len(json.dumps(v, ensure_ascii=False).encode()))
    kind = node.get("type")
    if kind == "object":
        return {name: longest(value, root) for name, value in node.get("properties", {}).items()}
    if kind == "array":
        return [longest(node["items"], root) for _ in range(node["maxItems"])]
    if kind == "string":
        if "pattern" in node:
            return "x" * 40  # the only pattern here is Keyword's, at most 40 ASCII characters
        return WIDE * node["maxLength"]
    if kind == "integer":
        return -9999999999999999
    if kind == "number":
        return -1.234567890123456e-100
    if kind == "boolean":
        return False
    return None


def spaced(value: Any) -> bytes:
    """The value with a space after every separator, as the grammar allows."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": ")).encode()


class Note(BaseModel):
    title: str = Field(max_length=80)
    tags: list[Annotated[str, Field(max_length=30)]] = Field(max_length=5)
    kind: Literal["bug", "feature"]
    priority: int = Field(ge=1, le=5)
    score: float
    body: str | None = None


@pytest.mark.parametrize("model", [Plan, Decision, Verdict, CodeResult, Note])
@pytest.mark.parametrize("max_tokens", [256, 512, 1536])
def test_the_longest_answer_the_grammar_admits_fits_max_tokens(model: type[BaseModel], max_tokens: int) -> None:
    try:
        budget = fit_to_budget(grammar_schema(model.model_json_schema()), max_tokens, 4)
    except SchemaRefused as refused:  # only where even the fixed parts cannot fit
        assert f"max_tokens {max_tokens}" in str(refused)
        return
    assert budget.worst_case_tokens is not None and budget.worst_case_tokens <= max_tokens
    answer = longest(budget.schema, budget.schema)
    assert len(spaced(answer)) + 1 <= budget.worst_case_tokens
    model.model_validate(answer)  # the fitted bounds are inside the model's own


def test_bounds_shrink_in_proportion_and_only_as_far_as_needed() -> None:
    roomy = fit_to_budget(grammar_schema(Plan.model_json_schema()), 20_000, 4)
    assert not roomy.scaled and roomy.schema["$defs"]["PlanStep"]["properties"]["description"]["maxLength"] == 160
    tight = fit_to_budget(grammar_schema(Decision.model_json_schema()), 1536, 4).schema
    answer = tight["properties"]["answer"]["maxLength"]
    description = tight["$defs"]["PlanStep"]["properties"]["description"]["maxLength"]
    assert 0 < description < answer < 300
    assert abs(answer / description - 300 / 160) < 0.2


def test_unbounded_parts_get_bounds_and_free_form_objects_get_no_promise() -> None:
    note = fit_to_budget(grammar_schema(Note.model_json_schema()), 512, 4)
    body = note.schema["properties"]["body"]["anyOf"][0]
    assert body["type"] == "string" and 0 < body["maxLength"] < 512
    free = fit_to_budget(grammar_schema({"type": "object"}), 512, 4)
    assert free.worst_case_tokens is None


def test_a_small_integer_range_becomes_a_choice() -> None:
    assert grammar_schema({"type": "integer", "minimum": 1, "maximum": 5})["enum"] == [1, 2, 3, 4, 5]
    assert grammar_schema({"type": "integer", "exclusiveMinimum": 0, "maximum": 6, "multipleOf": 2})["enum"] == [2, 4, 6]
    assert "enum" not in grammar_schema({"type": "integer", "minimum": 0, "maximum": 10_000})


class Story(BaseModel):
    title: str = Field(max_length=100)
    lines: list[Annotated[str, Field(max_length=400)]] = Field(max_length=8)


LOOPING = [
    "Count from 1 to 1000, every number, in the lines.",
    "Write the digits 1234567890 again and again, as long as you can.",
    "Write a very long poem, with line breaks and \"quotes\", about tabs\tand newlines.",
    "Repeat the word 'finish' forever.",
]


@pytest.mark.parametrize("prompt", LOOPING)
@pytest.mark.parametrize("max_tokens", [100, 300])
async def test_every_answer_closes_within_its_budget_on_the_embedded_model(prompt: str, max_tokens: int) -> None:
    """Prompts that make a small model loop or write control characters: the answer is still a
    valid object, within max_tokens, never cut off."""
    result = await complete("llamacpp/smollm2", prompt, schema=Story, temperature=0.7, max_tokens=max_tokens, seed=3)
    assert isinstance(result.output, Story)
    assert result.finish_reason == "stop" and result.usage.output_tokens < max_tokens
    json.loads(result.text)  # strict: no raw control characters inside strings
    assert result.engine_stats["repeat_penalty"] == 1.1


async def test_a_prompt_that_leaves_no_room_for_the_answer_is_stopped_before_it_starts() -> None:
    with pytest.raises(PromptTooLong, match="max_tokens"):
        await complete("llamacpp/smollm2", "Say hi.", schema=Story, max_tokens=8190)
