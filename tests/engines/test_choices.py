"""A schema whose answers are a short list is decided by scoring them (llama.cpp), through the
same door: the same typed answer, the probabilities on the call."""

from __future__ import annotations

import json
import re
from typing import Literal

import pytest
from pydantic import BaseModel

from turnout.agents import Router
from turnout.agents.router import _probability_of
from turnout.agents.schemas import PlanStep
from turnout.config import load_settings
from turnout.engines import complete
from turnout.engines._llamacpp_choice import ChoiceScorer
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
    assert stats["choice"] == "scored" and stats["choices"] == 6 and 1 <= stats["choices_scored"] <= 6
    probabilities = json.loads(stats["choice_probabilities"])
    assert sum(probabilities.values()) <= 1 + 1e-3
    assert max(probabilities, key=probabilities.get) == first.text
    assert stats["choice_probability"] == pytest.approx(probabilities[first.text], abs=1e-5)
    assert first.usage.input_tokens > 10 and first.usage.output_tokens > 0


async def test_the_router_scores_its_choice_and_its_confidence_is_the_agents_probability(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TURNOUT_HYBRID__ESCALATE_TO", "planner")  # a remote tier: the tier is a choice too
    settings = load_settings()
    step = PlanStep(kind="code", description="Rename load_inventory")
    # Once evaluated, later calls evaluate only the prompt's last token again; its logits alone
    # differ from those in a batch by float rounding (~1e-2 in probability), so both calls compared
    # below come after a first.
    await Router(settings=settings).run(step, candidates=["coder", "retriever"])
    route = await Router(settings=settings).run(step, candidates=["coder", "retriever"])
    assert route.agent in ("coder", "retriever") and route.tier in ("local", "remote")
    assert 0.5 <= route.confidence <= 1.0
    assert re.fullmatch(r"scored [1-4] of 4 choices: p\(agent\)=[01]\.\d\d", route.reason)
    every = await Router(settings=settings, temperature=1e-6).run(step, candidates=["coder", "retriever"])
    assert every.reason.startswith("scored 4 of 4 choices")
    assert (every.agent, every.tier) == (route.agent, route.tier)
    assert every.confidence == pytest.approx(route.confidence, abs=1e-3)


async def test_with_no_remote_tier_the_router_chooses_only_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_HYBRID__ESCALATE_TO", raising=False)
    settings = load_settings()
    assert settings.hybrid.escalate_to is None
    route = await Router(settings=settings).run(PlanStep(kind="code", description="Rename load_inventory"),
                                                candidates=["coder", "retriever"])
    assert route.agent in ("coder", "retriever") and route.tier == "local"
    assert re.fullmatch(r"scored [12] of 2 choices: p\(agent\)=[01]\.\d\d", route.reason)
    alone = await Router(settings=settings).run(PlanStep(kind="verify", description="Run the tests"),
                                                candidates=["verifier"])
    assert (alone.agent, alone.tier, alone.confidence) == ("verifier", "local", 1.0)
    assert alone.reason == "scored 0 of 1 choices: p(agent)=1.00"


async def test_a_single_answer_is_given_without_evaluating_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    class Only(BaseModel):
        color: Literal["red"]

    def evaluated(self: object, tokens: list[int]) -> None:
        raise AssertionError("a single answer was evaluated")

    monkeypatch.setattr(ChoiceScorer, "_evaluate", evaluated)
    result = await complete("llamacpp/smollm2", "Pick a color.", schema=Only, temperature=0)
    assert result.output == Only(color="red")
    assert result.engine_stats["choice"] == "only" and result.engine_stats["choices_scored"] == 0
    assert result.engine_stats["choice_probability"] == 1.0
    assert result.usage.input_tokens > 5


def test_a_branch_left_unscored_that_mixes_agents_makes_the_confidence_a_lower_bound() -> None:
    scored = {'{"agent": "coder", "tier": "local"}': 0.9}
    coder_remote = {"answers": ['{"agent": "coder", "tier": "remote"}'], "probability": 0.04}
    mixed = {"answers": ['{"agent": "coder", "tier": "x"}', '{"agent": "retriever", "tier": "x"}'], "probability": 0.06}
    assert _probability_of("coder", scored, [coder_remote]) == (pytest.approx(0.94), True)
    assert _probability_of("coder", scored, [coder_remote, mixed]) == (pytest.approx(0.94), False)


async def test_at_temperature_0_answers_that_cannot_win_are_not_scored_and_the_choice_is_the_same() -> None:
    prompt = "Pick a color of the sky, and say if you are sure."
    await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=0)  # the prompt cached, as above
    pruned = await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=0)
    # Drawn at a temperature this low, the most probable answer is all but certain; every answer is scored.
    every = await complete("llamacpp/smollm2", prompt, schema=Pick, temperature=1e-6)
    assert every.engine_stats["choices_scored"] == every.engine_stats["choices"] == 6
    assert pruned.text == every.text
    assert pruned.engine_stats["choices_scored"] < 6
    scored = json.loads(pruned.engine_stats["choice_probabilities"])
    all_of_them = json.loads(every.engine_stats["choice_probabilities"])
    assert scored == pytest.approx({text: all_of_them[text] for text in scored}, abs=1e-4)
    assert max(all_of_them, key=all_of_them.get) == pruned.text
    left = json.loads(pruned.engine_stats["choices_left"])  # each branch left: the exact total under it
    assert sum(scored.values()) + sum(branch["probability"] for branch in left) == pytest.approx(1, abs=1e-3)
    for branch in left:
        assert branch["probability"] == pytest.approx(sum(all_of_them[t] for t in branch["answers"]), abs=1e-4)
