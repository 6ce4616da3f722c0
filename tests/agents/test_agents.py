"""Each agent: typed output, constrained choices, usable from Python and as a graph node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from langgraph.graph import END, START, StateGraph

from turnout.agents import (
    CodeResult,
    Coder,
    Evidence,
    Plan,
    Planner,
    PlanStep,
    Retriever,
    Route,
    Router,
    Snippet,
    Verdict,
    Verifier,
    edit_problems,
)
from turnout.agents.coder import code_result_schema
from turnout.agents.retriever import search_terms_schema
from turnout.agents.router import route_schema
from turnout.engines import scripted
from turnout.errors import SchemaError, UserError
from turnout.tools import CodeIndex


@pytest.fixture
def index(tmp_path: Path) -> CodeIndex:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pricing.py").write_text(
        'def tax_for_region(amount, region):\n    """Tax owed in a region."""\n    return amount * 0.2\n\n\n'
        'def apply_discount(amount, rate):\n    """Reduce an amount by a rate."""\n    return amount * (1 - rate)\n'
    )
    return CodeIndex.build(tmp_path / "repo")


async def test_the_router_can_only_choose_among_its_candidates() -> None:
    schema = route_schema(("retriever", "coder"))
    assert schema.model_json_schema()["properties"]["agent"]["enum"] == ["retriever", "coder"]
    with scripted.scripted("r", ['{"agent": "planner", "tier": "local", "confidence": 1, "reason": "x"}'] * 2):
        with pytest.raises(SchemaError):
            await Router(model="scripted/r").run(PlanStep(kind="code", description="x"), candidates=["retriever", "coder"])
    with scripted.scripted("r", ['{"agent": "coder", "tier": "remote", "confidence": 0.4, "reason": "hard"}']) as s:
        route = await Router(model="scripted/r").run(PlanStep(kind="code", description="fix the bug"), candidates=["coder"])
    assert type(route) is Route and (route.agent, route.tier, route.confidence) == ("coder", "remote", 0.4)
    system, step = s.calls[0]
    assert system["content"].endswith("\nStep kind: code\nAgents: coder") and step["content"] == "fix the bug"


async def test_the_retriever_may_name_only_real_symbols_and_ranks_them_first(index: CodeIndex) -> None:
    schema = search_terms_schema(tuple(index.symbols()))
    schema.model_validate({"keywords": ["tax"], "symbols": ["tax_for_region"]})
    with pytest.raises(ValidationError):
        schema.model_validate({"keywords": ["tax"], "symbols": ["compute_tax"]})  # not in the code
    with scripted.scripted("q", [{"keywords": ["reduce"], "symbols": ["apply_discount"]}]):
        evidence = await Retriever(index, model="scripted/q").run("how is tax computed?")
    assert evidence.keywords == ["reduce", "apply_discount"]
    assert evidence.snippets[0].symbol == "apply_discount"  # the model's pick, above BM25's
    assert evidence.snippets[0].score > evidence.snippets[1].score
    assert {s.path for s in evidence.snippets} == {"pricing.py"}


async def test_a_retriever_without_an_index_says_how_to_make_one() -> None:
    with pytest.raises(UserError, match=r"Retriever\(index=CodeIndex.build"):
        await Retriever().run("anything")


async def test_the_coder_may_only_edit_files_it_was_shown() -> None:
    evidence = Evidence(query="q", snippets=[Snippet(path="pricing.py", start_line=1, end_line=3, score=1, text="def f(): ...")])
    schema = code_result_schema(("pricing.py",))
    with pytest.raises(ValidationError):
        schema.model_validate({"edits": [{"path": "secrets.py", "code": ""}], "explanation": ""})
    edit = {"edits": [{"path": "pricing.py", "symbol": "f", "code": "def f():\n    return 2\n"}], "explanation": "returns 2"}
    with scripted.scripted("c", [edit]) as script:
        result = await Coder(model="scripted/c").run("make f return 2", evidence=evidence)
    assert type(result) is CodeResult and result.edits[0].code.endswith("return 2\n")
    assert "# pricing.py:1-3\ndef f(): ..." in script.calls[0][-1]["content"]
    assert edit_problems(result) == []


def test_edits_that_do_not_parse_are_reported() -> None:
    result = CodeResult.model_validate({"edits": [{"path": "a.py", "code": "def f(:\n"}], "explanation": ""})
    [problem] = edit_problems(result)
    assert problem.startswith("a.py: line 1: ")


async def test_the_planner_plans_and_decides() -> None:
    plan = {"steps": [{"kind": "retrieve", "description": "find tax code", "depends_on": []}]}
    decision = {"action": "finish", "answer": "in pricing.py", "steps": []}
    with scripted.scripted("p", [plan, decision]) as script:
        planner = Planner(model="scripted/p")
        made = await planner.run("Where is tax computed?", context="Files: pricing.py")
        decided = await planner.decide("Where is tax computed?", made.steps, ["step 0: found pricing.py"])
    assert made == Plan.model_validate(plan)
    assert (decided.action, decided.answer) == ("finish", "in pricing.py")
    assert "Known context:\nFiles: pricing.py" in script.calls[0][-1]["content"]
    assert "- step 0: found pricing.py" in script.calls[1][-1]["content"]


async def test_the_verifier_judges_from_evidence() -> None:
    with scripted.scripted("v", [{"passed": False, "reasons": ["tests fail"]}]) as script:
        verdict = await Verifier(model="scripted/v").run("Step: fix it", evidence="2 failed")
    assert verdict == Verdict(passed=False, reasons=["tests fail"])
    assert "Evidence:\n2 failed" in script.calls[0][-1]["content"]


async def test_agents_are_plain_langgraph_nodes(index: CodeIndex) -> None:
    from typing import TypedDict

    class S(TypedDict, total=False):
        query: str
        evidence: Evidence
        claim: str
        verdict: Verdict

    builder = StateGraph(S)
    builder.add_node("retrieve", Retriever(index, model="scripted/q"))
    builder.add_node("claim", lambda s: {"claim": f"found {s['evidence'].snippets[0].symbol}"})
    builder.add_node("verify", Verifier(model="scripted/v"))
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "claim")
    builder.add_edge("claim", "verify")
    builder.add_edge("verify", END)
    with scripted.scripted("q", [{"keywords": ["tax"]}]), scripted.scripted("v", [{"passed": True, "reasons": []}]):
        state: dict[str, Any] = await builder.compile().ainvoke({"query": "where is tax computed?"})
    assert state["claim"] == "found tax_for_region"
    assert state["verdict"].passed
