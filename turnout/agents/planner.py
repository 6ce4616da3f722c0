"""The planner: breaks a task into typed steps, then finishes or replans from their results.

It is the one agent that may reasonably sit on a frontier cloud model; under a privacy
policy it sees the task, file paths and summaries written by local agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field, create_model

from turnout.agents._base import RoleAgent, as_request
from turnout.agents.schemas import STEP_KINDS, Answer, Decision, Plan, PlanStep, StepKind
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.tag import Content, Tagged


def describe_results(results: Sequence[Content]) -> Tagged:
    """Step results for the planner: text the agents wrote (plain strings count as summaries)."""
    if not results:
        return tag.as_tagged(tag.instructions("(no results yet)"))
    return tag.join(tag.compose("- {r}", r=tag.summary(r) if isinstance(r, str) else r) for r in results)


@lru_cache(maxsize=16)
def plan_schema(kinds: tuple[StepKind, ...]) -> type[Plan]:
    """`Plan` whose steps may only be of `kinds`."""
    if set(kinds) == set(STEP_KINDS):
        return Plan
    choice: Any = Literal[tuple(kinds)]  # type: ignore[valid-type]
    step = create_model("PlanStep", __base__=PlanStep, kind=(choice, ...))
    steps = Plan.model_fields["steps"]
    return create_model("Plan", __base__=Plan, steps=(list[step], Field(min_length=1, max_length=steps.metadata[-1].max_length)))  # type: ignore[valid-type]


@lru_cache(maxsize=256)
def decision_schema(cite_ids: tuple[str, ...]) -> type[Decision]:
    """`Decision` whose `cites` are among `cite_ids` (none when there is no evidence). The JSON
    schema asks for at least one, so a model decoding under it chooses (a small model allowed
    to leave it empty rarely cites); an answer without is still valid, and judged ungrounded."""
    choice: Any = Literal[tuple(cite_ids)] if cite_ids else Literal["none"]  # type: ignore[valid-type]
    bounds: Any = (
        Field(default_factory=list, max_length=3, json_schema_extra={"minItems": 1})
        if cite_ids
        else Field(default_factory=list, max_length=0)
    )
    return create_model("Decision", __base__=Decision, cites=(list[choice], bounds))


def describe_plan(plan: Sequence[PlanStep]) -> Tagged:
    return tag.join(tag.compose(f"{i}. [{s.kind}] {{d}}", d=tag.summary(s.description)) for i, s in enumerate(plan))


class Planner(RoleAgent[Plan]):
    agent_name: ClassVar[str] = "planner"
    role: ClassVar[RoleName] = "planner"
    input_key: ClassVar[str] = "task"
    output_key: ClassVar[str] = "plan"
    instructions: ClassVar[str] = (
        "You plan work for a team of agents on a software repository. Break the task into "
        "at most 4 short steps. Each step has a kind: retrieve (find code or facts in the "
        "repository), code (write or change code), verify (check results), answer (write the "
        "final answer). Reply with JSON only."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_tokens=kwargs.pop("max_tokens", 1536), **kwargs)

    async def run(self, request: Content, *, context: Content = "", kinds: Sequence[StepKind] = STEP_KINDS) -> Plan:
        """Plan `request` (the task); `context` is what is known already (files, symbols:
        tag it, e.g. `tag.path(...)`; a plain string is untagged); `kinds`: the step kinds
        the plan may use (a question's plan needs no `code` step)."""
        prompt = tag.compose("Task: {task}", task=as_request(request))
        if context:
            prompt = prompt + tag.compose("\nKnown context:\n{context}", context=context)
        result = await self.ask(prompt, plan_schema(tuple(kinds)))
        assert isinstance(result.output, Plan)
        return Plan.model_validate(result.output.model_dump())

    async def decide(
        self,
        task: Content,
        plan: Sequence[PlanStep],
        results: Sequence[Content],
        *,
        evidence: Content = "",
        cite_ids: Sequence[str] = (),
    ) -> Decision:
        """Finish with an answer, or replan, given what the steps produced. `evidence`: what
        the steps found, listed under `cite_ids` (the only ids `cites` may hold)."""
        prompt = tag.compose(
            "Task: {task}\nPlan:\n{plan}\nResults:\n{results}\nEvidence:\n{evidence}\n"
            "If the results answer the task, reply action=finish: cite the ids of the evidence "
            "that answers it and say in one sentence what it shows. "
            "Otherwise reply action=replan with new steps.",
            task=as_request(task),
            plan=describe_plan(plan),
            results=describe_results(results),
            evidence=evidence or tag.instructions("(none)"),
        )
        result = await self.ask(prompt, decision_schema(tuple(cite_ids)))
        assert isinstance(result.output, Decision)
        return Decision.model_validate(result.output.model_dump())

    async def answer(
        self, task: Content, step: PlanStep, results: Sequence[Content], *, model: str | None = None
    ) -> Answer:
        """Carry out an `answer` step: write the answer from the results so far."""
        prompt = tag.compose(
            "Task: {task}\nStep: {step}\nResults so far:\n{results}\nWrite the answer.",
            task=as_request(task),
            step=tag.summary(step.description),
            results=describe_results(results),
        )
        result = await self.ask(prompt, Answer, model=model)
        assert isinstance(result.output, Answer)
        return result.output
