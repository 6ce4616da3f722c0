"""A hybrid run's answer is grounded in evidence ids, and a plan that does not fit the task is
re-planned once, then stuck: pinned with the scripted engine."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from langgraph.checkpoint.memory import InMemorySaver

from tests.scripted_team import Team, finish, in_order, plan
from turnout.agents.planner import decision_schema
from turnout.graphs import build_hybrid_graph
from turnout.graphs.hybrid import plan_problem

QUESTION = "Where is the tax for a region computed?"


async def _run(team: Team, task: str = QUESTION) -> dict[str, Any]:
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    return await graph.ainvoke({"task": task}, {"configurable": {"thread_id": "g"}})


def turns(*answers: Any) -> Any:
    """A script giving `answers` in turn; a callable among them answers from the messages."""
    remaining = iter(answers)

    def answer(messages: list[dict[str, Any]]) -> Any:
        value = next(remaining)
        return value(messages) if callable(value) else value

    return answer


def cite(symbol: str, answer: str = "finish") -> Any:
    """A planner's finishing answer citing the evidence id listed for `symbol`."""

    def answer_with(messages: list[dict[str, Any]]) -> dict[str, Any]:
        found = re.search(rf"^(E\d+) \S+ {re.escape(symbol)}$", messages[-1]["content"], re.MULTILINE)
        return {"action": "finish", "cites": [found.group(1)] if found else [], "answer": answer, "steps": []}

    return answer_with


async def test_the_answer_cites_the_chosen_evidence_as_path_line_and_symbol(team: Team) -> None:
    """Even a control word for a sentence: the evidence the planner chose is the answer."""
    planner = team.use("planner", turns(plan(("retrieve", "find the tax code", [])), cite("tax_for_region")))
    state = await _run(team)
    assert state["status"] == "finished", state.get("reason")
    assert state["answer"] == "shop/pricing.py:4 tax_for_region"
    assert [(c.path, c.line, c.symbol) for c in state["citations"]] == [("shop/pricing.py", 4, "tax_for_region")]
    decide_prompt = planner.calls[-1][-1]["content"]
    assert re.search(r"^E1 shop/\w+\.py:\d+-\d+ \w+$", decide_prompt, re.MULTILINE)
    assert "return amount" not in decide_prompt  # ids, paths and names: never the code


async def test_a_sentence_that_names_the_evidence_cites_it(team: Team) -> None:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("It is tax_for_region.")])
    state = await _run(team)
    assert state["status"] == "finished"
    assert state["answer"] == "It is tax_for_region. (shop/pricing.py:4 tax_for_region)"


async def test_evidence_that_is_not_about_the_question_does_not_answer_it(team: Team) -> None:
    team.use("planner", turns(plan(("retrieve", "find the tax code", [])), cite("load_inventory", "It is here.")))
    team.use("retriever", lambda m: {"keywords": ["tax", "inventory"]})
    state = await _run(team)
    assert state["status"] == "unanswered"
    assert state["reason"].startswith(
        "the answer cites shop/inventory.py:4 load_inventory, but the evidence that fits the question is "
        "shop/pricing.py:4 tax_for_region"
    )


async def test_a_question_with_no_evidence_is_unanswered_not_made_up(team: Team) -> None:
    team.use("planner", [plan(("retrieve", "find the weather code", [])), finish("The weather module computes it.")])
    team.use("retriever", lambda m: {"keywords": ["zzqx"]})
    state = await _run(team, "Where is the weather forecast cached?")
    assert state["status"] == "unanswered"
    assert state["reason"].startswith("the answer cites no evidence") or "no evidence" in state["reason"]


def test_the_planner_may_only_cite_the_ids_it_was_shown() -> None:
    schema = decision_schema(("E1", "E2"))
    cites = schema.model_json_schema()["properties"]["cites"]
    assert cites["items"]["enum"] == ["E1", "E2"] and (cites["minItems"], cites["maxItems"]) == (1, 3)
    assert decision_schema(()).model_json_schema()["properties"]["cites"]["maxItems"] == 0


def test_plans_that_do_not_fit_the_task_are_named() -> None:
    from turnout.agents.schemas import PlanStep

    def steps(*pairs: tuple[str, str]) -> list[PlanStep]:
        return [PlanStep(kind=k, description=d) for k, d in pairs]  # type: ignore[arg-type]

    same = steps(("retrieve", "find it"), ("retrieve", "Find it "))
    assert plan_problem("Rename a to b", same, first=True) == "all 2 steps are the same step"
    assert "question" in (plan_problem(QUESTION, steps(("code", "write it")), first=True) or "")
    assert "no step finds" in (plan_problem("Rename a to b", steps(("answer", "say it")), first=True) or "")
    assert plan_problem("Rename a to b", steps(("answer", "say it")), first=False) is None
    assert plan_problem(QUESTION, steps(("retrieve", "find tax"), ("answer", "say where")), first=True) is None


async def test_a_plan_of_identical_steps_is_replanned_once_with_the_reason(team: Team) -> None:
    """What the embedded planner did on the quick-start question: three identical steps."""
    same = plan(*[("retrieve", "find the tax code", [])] * 3)
    planner = team.use("planner", turns(same, plan(("retrieve", "find the tax code", [])), cite("tax_for_region")))
    state = await _run(team)
    assert state["status"] == "finished"
    assert "A plan was rejected: all 3 steps are the same step." in planner.calls[1][-1]["content"]
    assert len(team.scripts["retriever"].calls) == 1  # the rejected plan never ran


async def test_a_plan_that_does_not_fit_twice_is_stuck(team: Team) -> None:
    same = plan(*[("retrieve", "find the tax code", [])] * 2)
    team.use("planner", [same, same])
    state = await _run(team)
    assert (state["status"], state["reason"]) == ("stuck", "the plan did not fit the task twice: all 2 steps are the same step")
    assert not state.get("results")


async def test_a_question_is_planned_without_code_steps(team: Team) -> None:
    """The step kinds are a choice given with the call: for a question, `code` is not one of
    them (a local model cannot write it; an answer that does fails validation)."""
    team.use("planner", [plan(("code", "compute the tax", [])), plan(("code", "compute the tax", []))])
    state = await _run(team)
    assert state["status"] == "stuck"
    assert "planner's answer was unusable" in state["reason"] and "'retrieve', 'answer' or 'verify'" in state["reason"]


async def test_a_replan_that_does_not_fit_twice_is_stuck(team: Team) -> None:
    replan = {"action": "replan", "answer": "", "steps": [{"kind": "code", "description": "write it", "depends_on": []}]}
    planner = team.use("planner", [plan(("retrieve", "find the tax code", [])), replan, replan])
    state = await _run(team)
    assert (state["status"], state["reason"]) == (
        "stuck",
        "the new plan did not fit the task twice: the task is a question, and the plan writes code: "
        "plan retrieve steps to find the answer",
    )
    assert "a new plan was rejected" in planner.calls[2][-1]["content"]


def test_decision_answers_are_bounded_sentences() -> None:
    schema = decision_schema(("E1",)).model_json_schema()
    assert schema["properties"]["answer"]["maxLength"] == 300
    json.dumps(schema)


async def test_a_plan_that_finds_nothing_is_replanned_with_only_the_kinds_that_find(team: Team) -> None:
    """The embedded planner planned only `answer` and `verify` steps for questions: the re-plan
    may only choose `retrieve` (for a question), so an answer-only plan again is invalid."""
    planner = team.use("planner", turns(plan(("answer", "say it", [])), plan(("retrieve", "find the tax code", [])),
                                        cite("tax_for_region")))
    assert (await _run(team))["status"] == "finished"
    assert "no step finds anything" in planner.calls[1][-1]["content"]
    team.use("planner", [plan(("answer", "say it", []))] * 3)
    state = await _run(team)
    assert state["status"] == "stuck" and "'retrieve'" in state["reason"] and "unusable" in state["reason"]


async def test_a_task_past_the_limit_is_refused_before_any_model_call(team: Team) -> None:
    from turnout.errors import UserError

    planner = team.use("planner", [])
    with pytest.raises(UserError, match=r"the task is 4,001 characters; the limit is 4,000 \(\[hybrid\] max_task_chars\)"):
        await _run(team, "Where is " + "x" * 3991 + "?")
    assert planner.calls == []


async def test_a_repository_with_nothing_to_read_is_refused(tmp_path: Any) -> None:
    from turnout.errors import UserError

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no files the code index can read"):
        build_hybrid_graph(repo=tmp_path / "empty")


async def test_a_repository_without_python_is_searched_as_text(team: Team) -> None:
    """No Python files is not an error: other text is indexed by lines and can be evidence."""
    for name in list(team.repo.rglob("*.py")):
        name.unlink()
    (team.repo / "PRICING.md").write_text("# Pricing\n\nTax for a region is computed by the billing service.\n")
    team.use("planner", [plan(("retrieve", "find the tax notes", [])), finish("PRICING.md says so")])
    state = await _run(team)
    assert state["results"][0].evidence.snippets[0].path == "PRICING.md"
    assert state["status"] == "unanswered"  # a file is not a symbol that fits the question: honest


async def test_a_question_in_another_language_is_not_given_a_made_up_answer(team: Team) -> None:
    team.use("planner", [plan(("retrieve", "buscar el impuesto", [])), finish("Se calcula en otro sitio.")])
    team.use("retriever", lambda m: {"keywords": ["impuesto", "region"]})
    state = await _run(team, "¿Dónde se calcula el impuesto de una región?")
    assert state["status"] == "unanswered"


async def test_an_errored_step_and_an_unanswered_run_have_error_status_on_their_spans(team: Team, spans: Any) -> None:
    from opentelemetry.trace import StatusCode

    from turnout.telemetry import instrument

    team.use("retriever", in_order(RuntimeError("index on fire")))
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("finish")])
    graph = instrument(build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()))
    state = await graph.ainvoke({"task": QUESTION}, {"configurable": {"thread_id": "s"}})
    assert state["status"] == "unanswered"
    finished = spans.get_finished_spans()
    (step,) = [s for s in finished if s.name == "invoke_agent retriever"]
    assert step.status.status_code == StatusCode.ERROR and "index on fire" in (step.status.description or "")
    root = next(s for s in finished if s.attributes.get("turnout.run.status"))
    assert root.attributes["turnout.run.status"] == "unanswered"
    assert root.status.status_code == StatusCode.ERROR and "no evidence" in (root.status.description or "")


def test_which_snippet_fits_a_question_best() -> None:
    from turnout.agents.schemas import Snippet
    from turnout.graphs._answer_check import fit

    def best(question: str, *symbols: str, text: str = "") -> str:
        snippets = [Snippet(path="pkg/mod.py", start_line=1, end_line=2, score=1, symbol=s, text=text) for s in symbols]
        return max(snippets, key=lambda s: fit(s, question)).symbol or ""

    assert best("Where is the inventory saved to disk?", "load_inventory", "save_inventory") == "save_inventory"
    assert best("Where is the tax for a region computed?", "tax_rate_for_region", "tax_for_region") == "tax_for_region"
    assert best("Which function wraps text to column widths?", "_CustomTextWrap", "_wrap_text_to_colwidths") == (
        "_wrap_text_to_colwidths"
    )
    no_class = Snippet(path="t.py", start_line=1, end_line=2, score=1, symbol="_CustomTextWrap", text="")
    assert fit(no_class, "Which function wraps text?") == 0.0
    method = Snippet(path="t.py", start_line=1, end_line=2, score=1, symbol="_CustomTextWrap._len", text="")
    assert fit(method, "Which function wraps text?") == 0.0  # the class's words are not the method's
    assert best("Where is the next invoice number generated?", "InvoiceNumberSequence", "InvoiceNumberSequence.next_number") == (
        "InvoiceNumberSequence.next_number"
    )
    definition = Snippet(path="p.py", start_line=1, end_line=2, score=1, symbol="tax_for_region", text="def tax_for_region(a):")
    caller = Snippet(path="i.py", start_line=9, end_line=12, score=1, symbol="invoice_tax", text="return tax_for_region(x)")
    assert fit(caller, "Which function calls tax_for_region?") > fit(definition, "Which function calls tax_for_region?") == 0.0


def test_a_sentence_naming_a_file_the_evidence_does_not_hold_is_dropped() -> None:
    from turnout.agents.schemas import Snippet
    from turnout.graphs._answer_check import _only_about

    snippet = Snippet(path="tabulate/__init__.py", start_line=1004, end_line=1019, score=1, symbol="_visible_width", text="")
    assert not _only_about(snippet, "tabulate_common.py:1004-1019 _visible_width")  # what the embedded planner wrote
    assert _only_about(snippet, "It is _visible_width, in tabulate/__init__.py:1004.")
