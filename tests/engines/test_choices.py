"""A schema whose answers are a short list is decided by scoring them (llama.cpp), through the
same door: the same typed answer, the probabilities on the call."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from turnout.agents import Router
from turnout.agents.schemas import PlanStep
from turnout.engines import complete
from turnout.engines.choices import finite_answers, scores_choices
from turnout.engines.schema_bounds import grammar_schema


class Pick(BaseModel):
    color: Literal["red", "green", "blue"]
    sure: bool


class Step(BaseModel):
    kind: Literal["retrieve", "code"]
    index: int | None = None


def test_a_short_list_of_answers_is_listed_in_property_order() -> None:
    assert finite_answers(grammar_schema(Pick.model_json_schema())) == [
        {"color": c, "sure": s} for c in ("red", "green", "blue") for s in (False, True)
    ]
    assert finite_answers(grammar_schema({"type": "integer", "minimum": 0, "maximum": 2})) == [0, 1, 2]


def test_free_text_numbers_and_long_lists_are_not_choices() -> None:
    assert finite_answers(grammar_schema(Step.model_json_schema())) is None  # an unbounded integer
    assert finite_answers({"type": "string", "maxLength": 3}) is None
    many = {"type": "object", "properties": {k: {"enum": list(range(5))} for k in "abc"}, "required": list("abc")}
    assert finite_answers(many) is None  # 125 answers > 64


def test_only_engines_that_score_say_so() -> None:
    assert scores_choices("llamacpp/smollm2") and not scores_choices("scripted/x")
    assert not scores_choices("anthropic/claude-sonnet-4-5")


async def test_a_choice_is_scored_on_llama_cpp_and_answers_the_same_typed_object() -> None:
    prompt = "Pick a color of the sky, and say if you are sure."
    # Once first: llama.cpp reuses the cached prompt from then on, and a prompt evaluated
    # afresh can tip a near tie the other way (as it can for generated answers).
    await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=0)
    first = await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=0)
    again = await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=0)
    assert isinstance(first.output, Pick) and first.output == again.output
    stats = first.engine_stats
    assert stats["choice"] == "scored" and stats["choices"] == 6
    probabilities = json.loads(stats["choice_probabilities"])
    assert abs(sum(probabilities.values()) - 1) < 1e-3
    assert max(probabilities, key=probabilities.get) == first.text
    assert stats["choice_probability"] == pytest.approx(probabilities[first.text], abs=1e-5)
    assert first.usage.input_tokens > 10 and first.usage.output_tokens > 0


async def test_the_router_scores_its_choice_and_its_confidence_is_the_agents_probability() -> None:
    route = await Router().run(PlanStep(kind="code", description="Rename load_inventory"), candidates=["coder", "retriever"])
    assert route.agent in ("coder", "retriever") and route.tier in ("local", "remote")
    assert 0.5 <= route.confidence <= 1.0
    assert route.reason.startswith("scored 4 choices: p(agent)=")
