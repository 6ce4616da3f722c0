"""Test doubles are objects you pass in: a `Script` goes where a model goes, a responder may
be told the schema it must answer, and `Script.auto()` answers any schema validly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel, Field

from turnout.agents import Coder, Router
from turnout.agents.schemas import PlanStep
from turnout.engines import complete
from turnout.engines._auto_answer import AutoAnswerError, auto_answer
from turnout.engines.scripted import Script
from turnout.errors import UserError
from turnout.graphs import build_hybrid_graph


class Pick(BaseModel):
    name: str = Field(pattern=r"^[a-z_]+$", min_length=3)
    count: int = Field(ge=2)
    tags: list[str] = Field(min_length=2)
    note: str | None = None


async def test_a_responder_that_takes_two_arguments_is_told_the_schema() -> None:
    seen: list[Any] = []

    def answer(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(schema)
        return {"name": "abc", "count": 2, "tags": ["x", "y"]}

    result = await complete(Script(answer), "pick", schema=Pick)  # a Script goes where a model string goes
    assert result.output == Pick(name="abc", count=2, tags=["x", "y"])
    assert {"name", "count", "tags"} <= set(seen[0]["required"]) and "pattern" in seen[0]["properties"]["name"]


async def test_auto_answers_any_schema_with_a_valid_instance_and_plain_text_without_one() -> None:
    script = Script.auto()
    picked = await complete(script, "pick", schema=Pick)
    assert isinstance(picked.output, Pick) and picked.output.count == 2 and len(picked.output.tags) == 2
    assert (await complete(script, "hello")).text == "scripted auto answer"


def test_auto_says_which_part_to_script_when_it_finds_no_answer() -> None:
    with pytest.raises(AutoAnswerError, match=r"\(root\).code.*script this answer"):
        auto_answer({"type": "object", "properties": {"code": {"type": "string", "pattern": "^Q{7}$"}}, "required": ["code"]})


async def test_an_agent_takes_a_script_as_its_model() -> None:
    script = Script([{"edits": [], "explanation": "nothing to do"}], name="my-coder")
    result = await Coder(model=script).run("do nothing")
    assert (await Coder(model=Script.auto()).run("inline")).edits == []  # the agent holds its script
    assert result.explanation == "nothing to do" and len(script.calls) == 1
    other = Script(["{}"], name="my-coder")  # the same name: registered under one of its own
    assert other.model != script.model


async def test_a_graph_runs_end_to_end_on_auto_scripts_with_no_json_written(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text("def tax_for_region(region):\n    return 0.2\n")
    auto = Script.auto()
    graph = build_hybrid_graph(repo=tmp_path, checkpointer=InMemorySaver(),
                               models={role: auto for role in ("planner", "router", "retriever", "coder", "verifier")})
    state = await graph.ainvoke({"task": "Where is the tax computed?"}, {"configurable": {"thread_id": "auto-1"}})
    # The smallest answers find nothing ("a" as the keyword), and the run says so: no false success.
    assert (state["status"], state["reason"]) == ("unanswered", "the steps found no evidence to answer the question from")
    assert auto.calls  # every call answered by the one object passed in
    route = await Router(model=auto).run(PlanStep(kind="retrieve", description="find it"), candidates=["retriever"])
    assert route.agent == "retriever"


def test_a_models_key_that_is_no_role_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(UserError, match="'plannr', which is no role"):
        build_hybrid_graph(repo=tmp_path, models={"plannr": Script.auto()})


def test_auto_answer_is_json_text() -> None:
    assert json.loads(auto_answer({"type": "array", "items": {"enum": [3, 4]}, "minItems": 1})) == [3]
