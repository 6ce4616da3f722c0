"""The planner: breaks a task into typed steps, then finishes or replans from their results.

It is the one agent that may reasonably sit on a frontier cloud model; under a privacy
policy it sees the task, file paths and summaries written by local agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from turnout.agents._base import Agent, as_request
from turnout.agents.schemas import Answer, Decision, Plan, PlanStep
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.tag import Content, Tagged


def describe_results(results: Sequence[Content]) -> Tagged:
    """Step results for the planner: text the agents wrote (plain strings count as summaries)."""
    if not results:
        return tag.as_tagged(tag.instructions("(no results yet)"))
    return tag.join(tag.compose("- {r}", r=tag.summary(r) if isinstance(r, str) else r) for r in results)


def describe_plan(plan: Sequence[PlanStep]) -> Tagged:
    return tag.join(tag.compose(f"{i}. [{s.kind}] {{d}}", d=tag.summary(s.description)) for i, s in enumerate(plan))


class Planner(Agent[Plan]):
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

    async def run(self, request: Content, *, context: Content = "") -> Plan:
        """Plan `request` (the task); `context` is what is known already (files, symbols:
        tag it, e.g. `tag.path(...)`; a plain string is untagged)."""
        prompt = tag.compose("Task: {task}", task=as_request(request))
        if context:
            prompt = prompt + tag.compose("\nKnown context:\n{context}", context=context)
        result = await self.ask(prompt, Plan)
        assert isinstance(result.output, Plan)
        return result.output

    async def decide(self, task: Content, plan: Sequence[PlanStep], results: Sequence[Content]) -> Decision:
        """Finish with an answer, or replan, given what the steps produced."""
        prompt = tag.compose(
            "Task: {task}\nPlan:\n{plan}\nResults:\n{results}\n"
            "If the results answer the task, reply action=finish with the answer. "
            "Otherwise reply action=replan with new steps.",
            task=as_request(task),
            plan=describe_plan(plan),
            results=describe_results(results),
        )
        result = await self.ask(prompt, Decision)
        assert isinstance(result.output, Decision)
        return result.output

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
